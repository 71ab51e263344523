"""Property: any table Python's csv module writes reads back unchanged, whatever delimiter and encoding.

Stated limits of the property (each is an honest ambiguity, not a reader shortcut):
- headers start with a letter and are already trimmed (the reader trims headers, and a row of numbers is
  taken for data, not a header);
- cells hold no NUL and no control characters other than tab, CR and LF;
- cells and headers never hold one of the *other* candidate delimiters: unquoted, a stray `;` in a comma
  file can make `;` look like the delimiter on a two-line table, and no sniffer can tell;
- cp1252 tables whose bytes also happen to be valid UTF-8 (e.g. "Ã©") are skipped, since UTF-8 is tried
  first, and cp1252 text must read as Western text (fewer accented letters than plain ones).
"""

from __future__ import annotations

import csv
import io
import re

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from snapmap_pipeline.core.read import read_bytes

DELIMITERS = [",", ";", "\t", "|"]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "cp1252"]


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _cell_text(delimiter: str) -> st.SearchStrategy[str]:
    others = "".join(d for d in DELIMITERS if d != delimiter)
    chars = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=others) | st.sampled_from(
        ["\n", "\r", '"', delimiter, " "]
    )
    return st.text(chars, max_size=8)


@st.composite
def tables(draw: st.DrawFn) -> tuple[str, str, list[str], list[list[str]]]:
    delimiter = draw(st.sampled_from(DELIMITERS))
    encoding = draw(st.sampled_from(ENCODINGS))
    others = set(DELIMITERS) - {delimiter}
    header_chars = st.characters(
        whitelist_categories=("L", "N", "P", "S", "Zs"), blacklist_characters="".join(others)
    )
    header = (
        st.tuples(st.characters(whitelist_categories=("L",)), st.text(header_chars, max_size=6))
        .map(lambda t: (t[0] + t[1]).strip())
        .filter(lambda h: h and h[0].isalpha() and h.strip() == h)
    )
    headers = draw(st.lists(header, min_size=1, max_size=5, unique=True))
    cell = _cell_text(delimiter)
    rows = draw(st.lists(st.lists(cell, min_size=len(headers), max_size=len(headers)), max_size=6))
    return delimiter, encoding, headers, rows


def _csv_text(delimiter: str, headers: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(tables())
def test_written_tables_read_back_unchanged(table: tuple[str, str, list[str], list[list[str]]]) -> None:
    delimiter, encoding, headers, rows = table
    text = _csv_text(delimiter, headers, rows)
    assume(_encodable(text, encoding))
    data = text.encode(encoding)
    if encoding == "cp1252" and not data.isascii():
        assume(not _is_utf8(data))
        assume(len(re.findall(r"[^\W\d_A-Za-z]", text)) <= len(re.findall(r"[A-Za-z]", text)))
    # A table whose only line is a lone empty cell is an empty file, not a table.
    assume(text.strip())

    df, report = read_bytes(data, "table.csv")

    assert df.columns == headers
    got = [["" if v is None else v for v in row] for row in df.rows()]
    assert got == rows, (report.to_dict(), text)
