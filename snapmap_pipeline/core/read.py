"""Safe readers: the bytes of a dropped CSV or Excel file become a frame of strings plus a ReadReport.

Guards (size, file type, zip bomb, column count, cell size) fail with clear SnapMapErrors. UTF-8 input goes
straight to polars; sniffing looks at a prefix only. No Dagster imports here.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from snapmap_pipeline.errors import (
    CellTooLargeError,
    DecodeError,
    EmptyFileError,
    FileTooLargeError,
    InputError,
    TooManyColumnsError,
    UnsupportedFileTypeError,
    ZipBombError,
)
from snapmap_pipeline.logs import get_logger
from snapmap_pipeline.settings import Settings, get_settings

log = get_logger(__name__)

DELIMITERS = (",", ";", "\t", "|")
PREFIX_BYTES = 64 * 1024  # sniffing (delimiter, header row, encoding) looks at this much only
SNIFF_ROWS = 50  # rows parsed from the prefix to judge delimiter consistency and row width
HEADER_SEARCH_ROWS = 10  # the real header row is looked for among this many leading rows
DETECT_BYTES = 1024 * 1024  # sample given to the legacy-encoding heuristics

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
# Magic bytes of files people drop by mistake, with the word used in the error message.
_FOREIGN_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x7fELF", "an ELF executable"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
)
_EXCEL_SUFFIXES = {".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xls"}

# Excel cells read as strings: dates arrive as "2024-03-01 00:00:00", floats may arrive as "1042.0".
_RE_MIDNIGHT = r"^(\d{4}-\d{2}-\d{2})[ T]00:00:00(?:\.0+)?$"
_RE_DATETIME = r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)$"
_RE_INTEGRAL_FLOAT = r"^(-?\d+)\.0+$"
# Cells that make a row look like data rather than a header: numbers, dates, amounts.
_RE_DATA_CELL = re.compile(r"^[\s$€£+\-]*[\d.,:/\- %]+[\s$€£%]*$|^(true|false)$", re.IGNORECASE)


@dataclass
class ReadReport:
    """What the reader found and decided; goes into run metadata and report.json (no cell values)."""

    filename: str
    kind: str  # "csv" | "xlsx" | "xls"
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    header_row: int = 0  # 0-based index of the header line (CSV record) or sheet row in the source
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- public entry points -------------------------------------------------------------------------------
def read_path(path: str | Path, **kw: Any) -> tuple[pl.DataFrame, ReadReport]:
    """Read a local file; the size guard runs on the file size before the bytes are loaded."""
    path = Path(path)
    settings: Settings = kw.get("settings") or get_settings()
    size = path.stat().st_size
    if size > settings.max_file_bytes:
        raise _too_large(path.name, size, settings)
    return read_bytes(path.read_bytes(), path.name, **kw)


def read_bytes(
    data: bytes, filename: str, *, sheet: str | None = None, settings: Settings | None = None
) -> tuple[pl.DataFrame, ReadReport]:
    """Turn a dropped file's bytes into an all-string frame with clean, unique headers.

    >>> df, report = read_bytes(b"Name;City\\nJos\\xc3\\xa9;Z\\xc3\\xbcrich\\n", "people.csv")
    >>> report.delimiter, df.columns, df.row(0)
    (';', ['Name', 'City'], ('José', 'Zürich'))
    """
    settings = settings or get_settings()
    if len(data) > settings.max_file_bytes:
        raise _too_large(filename, len(data), settings)
    if not data:
        raise EmptyFileError(f"'{filename}' is empty. Re-export the file and drop it again.", file=filename)

    kind, warnings = _detect_kind(data, filename)
    if kind == "csv":
        raw, report = _read_csv(data, filename, settings)
    else:
        raw, report = _read_excel(data, filename, kind, sheet, settings)
    report.warnings[:0] = warnings

    df = _finish(raw, report, settings)
    log.info(
        "file read",
        extra={
            "fields": {
                "file": filename,
                "kind": report.kind,
                "encoding": report.encoding,
                "rows": report.rows,
                "columns": len(report.columns),
                "header_row": report.header_row,
                "warnings": len(report.warnings),
            }
        },
    )
    return df, report


# -- file type -------------------------------------------------------------------------------------------
def _detect_kind(data: bytes, filename: str) -> tuple[str, list[str]]:
    """Decide csv/xlsx/xls by content (magic bytes); the extension only produces a warning on mismatch."""
    suffix = Path(filename).suffix.lower()
    expected = _EXCEL_SUFFIXES.get(suffix, "csv")
    head = data[:16]
    for magic, what in _FOREIGN_MAGIC:
        if head.startswith(magic):
            raise UnsupportedFileTypeError(
                f"'{filename}' is {what}, not a CSV or Excel export. Drop the CSV/XLSX/XLS file itself.",
                file=filename,
                detected=what,
            )
    if head.startswith(b"MZ") and b"\x00" in data[:64]:
        raise UnsupportedFileTypeError(
            f"'{filename}' is a Windows executable, not a CSV or Excel export. Drop the export file itself.",
            file=filename,
            detected="executable",
        )
    if head.startswith(_ZIP):
        if not _is_xlsx_zip(data):
            raise UnsupportedFileTypeError(
                f"'{filename}' is a ZIP archive, not an Excel workbook. "
                "Unzip it and drop the CSV/XLSX inside.",
                file=filename,
                detected="zip",
            )
        kind = "xlsx"
    elif head.startswith(_OLE2):
        kind = "xls"
    else:
        kind = "csv"
    warnings = []
    if kind != expected and not (kind == "xls" and expected == "xlsx"):
        warnings.append(f"file name says {expected} but the content is {kind}; read as {kind}")
    return kind, warnings


def _is_xlsx_zip(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
    except zipfile.BadZipFile:
        return False
    return "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names)


# -- CSV -------------------------------------------------------------------------------------------------
def _read_csv(data: bytes, filename: str, settings: Settings) -> tuple[pl.DataFrame, ReadReport]:
    buf, encoding = _to_utf8(data, filename)
    prefix = codecs.getincrementaldecoder("utf-8")("strict").decode(buf[:PREFIX_BYTES], final=False)
    if not prefix.strip("\ufeff \t\r\n") and not re.search(rb"[^\s\xef\xbb\xbf]", buf):
        raise EmptyFileError(
            f"'{filename}' holds only whitespace. Re-export the file with its header row and drop it again.",
            file=filename,
        )
    truncated = len(buf) > PREFIX_BYTES
    delimiter = _sniff_delimiter(prefix, truncated)
    rows = _parse_rows(prefix, delimiter, SNIFF_ROWS, truncated)
    header_row = _find_header_row(rows)
    if rows and len(rows[min(header_row, len(rows) - 1)]) > settings.max_columns:
        raise _too_many_columns(filename, len(rows[header_row]), settings)

    report = ReadReport(filename=filename, kind="csv", encoding=encoding, delimiter=delimiter)
    report.header_row = header_row
    try:
        df = _polars_csv(buf, delimiter, header_row)
    except pl.exceptions.ComputeError as exc:
        if "utf-8" in str(exc).lower() and encoding == "utf-8":
            # The prefix was valid UTF-8 but a later byte is not: detect on the whole file instead.
            buf, encoding = _decode_legacy(data, filename)
            report.encoding = encoding
            report.warnings.append(
                "the file is not valid UTF-8 after its first bytes; decoded as " + encoding
            )
            df = _polars_csv_or_ragged(buf, delimiter, header_row, report)
        elif "more fields" in str(exc):
            df = _read_ragged(buf, delimiter, header_row, report)
        else:
            raise InputError(
                f"'{filename}' could not be parsed as CSV ({exc}). Check that it is a plain CSV export.",
                code="malformed_csv",
                file=filename,
            ) from exc
    return df, report


def _polars_csv(buf: bytes, delimiter: str, header_row: int, **kw: Any) -> pl.DataFrame:
    """All columns as strings; the header row is read as data so its raw text (blanks, duplicates) is ours."""
    return pl.read_csv(
        buf,
        has_header=False,
        separator=delimiter,
        skip_rows=header_row,
        infer_schema=False,
        null_values=[""],
        quote_char='"',
        **kw,
    )


def _polars_csv_or_ragged(buf: bytes, delimiter: str, header_row: int, report: ReadReport) -> pl.DataFrame:
    try:
        return _polars_csv(buf, delimiter, header_row)
    except pl.exceptions.ComputeError as exc:
        if "more fields" not in str(exc):
            raise
        return _read_ragged(buf, delimiter, header_row, report)


def _read_ragged(buf: bytes, delimiter: str, header_row: int, report: ReadReport) -> pl.DataFrame:
    """Some rows have more cells than the header. Keep every cell: widen the frame to the longest row."""
    text = buf.decode("utf-8")
    # A per-row pass is needed to find the widest record; it runs only on this rare error path.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    widths = [len(r) for i, r in enumerate(reader) if i >= header_row]
    width = max(widths)
    longer = sum(1 for w in widths[1:] if w > widths[0])
    report.warnings.append(f"{longer} rows have more cells than the header; extra cells kept in new columns")
    schema = {f"column_{i}": pl.String for i in range(width)}
    return _polars_csv(buf, delimiter, header_row, schema=schema, missing_columns="insert")


def _sniff_delimiter(prefix: str, truncated: bool) -> str:
    """The delimiter giving the most consistent cell count (>1) over the first rows; ties go to `,`."""
    best, best_score = ",", 0.0
    for delimiter in DELIMITERS:
        counts = [len(r) for r in _parse_rows(prefix, delimiter, SNIFF_ROWS, truncated) if any(r)]
        if not counts:
            continue
        width, freq = Counter(counts).most_common(1)[0]
        if width < 2:
            continue
        score = freq / len(counts) + 0.001 * min(width, 100)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _parse_rows(text: str, delimiter: str, limit: int, truncated: bool) -> list[list[str]]:
    """Quote-aware rows from a text prefix; a row cut by the prefix end is dropped."""
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    try:
        for row in reader:
            rows.append(row)
            if len(rows) > limit:
                break
    except csv.Error:
        truncated = True  # a quote left open by the cut, or a giant cell: trust the complete rows only
    if truncated and rows:
        rows.pop()
    return rows[:limit]


# -- encodings -------------------------------------------------------------------------------------------
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def detect_encoding(sample: bytes, filename: str = "") -> str:
    """The encoding of a file from its first bytes, by the rules `read_bytes` applies to the whole file.

    For readers that stream a file and cannot hold it: "utf-8-sig" (BOM), a UTF-16/32 name (BOM, or
    BOM-less UTF-16), "utf-8" when the sample is valid UTF-8, else the legacy guess (cp1252, or what
    charset-normalizer finds). A file valid UTF-8 only in its sample fails later, when it is parsed.

    >>> detect_encoding("Zoë".encode("cp1252") + b",x\\n")
    'cp1252'
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    bomless = _bomless_utf16(sample[:4096])
    if bomless:
        return bomless
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(sample, final=False)
    except UnicodeDecodeError:
        return _decode_legacy(sample, filename)[1]
    return "utf-8"


def _to_utf8(data: bytes, filename: str) -> tuple[bytes, str]:
    """UTF-8 bytes for polars and the source encoding's name. UTF-8 input is returned as is (no copy)."""
    if data.startswith(codecs.BOM_UTF8):
        return data, "utf-8-sig"  # polars skips a UTF-8 BOM itself
    for bom, name in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            return _recode(data[len(bom) :], name, filename), name
    bomless = _bomless_utf16(data[:4096])
    if bomless:
        return _recode(data, bomless, filename), bomless
    if data.isascii():
        return data, "utf-8"
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(data[:PREFIX_BYTES], final=False)
    except UnicodeDecodeError:
        return _decode_legacy(data, filename)
    return data, "utf-8"  # the rest is validated by polars while parsing


def _bomless_utf16(head: bytes) -> str | None:
    """UTF-16 without a BOM shows as a zero in every other byte for Latin text."""
    pairs = len(head) // 2
    if pairs < 2:
        return None
    even_zero = head[0 : pairs * 2 : 2].count(0)
    odd_zero = head[1 : pairs * 2 : 2].count(0)
    if odd_zero >= 0.4 * pairs and even_zero <= 0.05 * pairs:
        return "utf-16-le"
    if even_zero >= 0.4 * pairs and odd_zero <= 0.05 * pairs:
        return "utf-16-be"
    return None


def _recode(data: bytes, encoding: str, filename: str) -> bytes:
    try:
        return data.decode(encoding).encode("utf-8")
    except UnicodeDecodeError as exc:
        raise _undecodable(filename, f"invalid {encoding} at byte {exc.start}") from exc


def _decode_legacy(data: bytes, filename: str) -> tuple[bytes, str]:
    """Not UTF-8: Windows-1252 when it reads as Western text, otherwise what charset-normalizer finds."""
    sample = data[:DETECT_BYTES]
    if b"\x00" in sample:
        raise _undecodable(filename, "it contains NUL bytes, so it is binary, not text")
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = None
    if text is not None and _reads_as_western(text[:DETECT_BYTES]):
        return text.encode("utf-8"), "cp1252"
    from charset_normalizer import from_bytes  # imported here: only legacy-encoded files need it

    matches = list(from_bytes(data))
    best = matches[0] if matches else None
    if best is not None:
        # Exports come from Windows or modern systems: a Windows code page nearly as clean as the top
        # guess (often a Mac code page, on short files) is the likelier truth.
        windows = [m for m in matches if m.encoding.startswith("cp125") and m.chaos <= best.chaos + 0.1]
        best = windows[0] if windows else best
        return str(best).encode("utf-8"), best.encoding
    if text is not None:
        return text.encode("utf-8"), "cp1252"
    raise _undecodable(filename, "no text encoding fits its bytes")


def _reads_as_western(text: str) -> bool:
    """Western text has mostly ASCII letters; Cyrillic or Greek bytes read as cp1252 are all accented."""
    ascii_letters = len(re.findall(r"[A-Za-z]", text))
    other_letters = len(re.findall(r"[^\W\d_A-Za-z]", text))
    return other_letters <= ascii_letters


# -- Excel -----------------------------------------------------------------------------------------------
def _read_excel(
    data: bytes, filename: str, kind: str, sheet: str | None, settings: Settings
) -> tuple[pl.DataFrame, ReadReport]:
    if kind == "xlsx":
        _check_zip_bomb(data, filename, settings)
    import fastexcel  # imported here: CSV-only runs never pay for it

    try:
        reader = fastexcel.read_excel(data)
        names = list(reader.sheet_names)
        if sheet is not None:
            if sheet not in names:
                raise InputError(
                    f"'{filename}' has no sheet '{sheet}'. Sheets: {', '.join(names)}. Pass one of these.",
                    code="sheet_not_found",
                    file=filename,
                    sheets=names,
                )
            chosen = sheet
            df = reader.load_sheet(sheet, header_row=None, dtypes="string").to_polars()
        else:
            chosen, df = names[0] if names else None, pl.DataFrame()
            for name in names:
                df = reader.load_sheet(name, header_row=None, dtypes="string").to_polars()
                if df.height:
                    chosen = name
                    break
    except fastexcel.FastExcelError as exc:
        raise UnsupportedFileTypeError(
            f"'{filename}' could not be opened as {kind} ({exc}). If it is password-protected, save an "
            "unprotected copy; otherwise re-export it as XLSX or CSV.",
            file=filename,
        ) from exc
    if df.height == 0:
        raise EmptyFileError(
            f"'{filename}' has no filled cells in any sheet. Re-export the file and drop it again.",
            file=filename,
        )
    if df.width > settings.max_columns:
        raise _too_many_columns(filename, df.width, settings)

    rows = [list(r) for r in df.head(SNIFF_ROWS).rows()]
    header_row = _find_header_row(rows)
    df = df.slice(header_row).with_columns(
        pl.when(pl.col(c) != "")
        .then(
            pl.col(c)
            .str.replace(_RE_MIDNIGHT, "$1")
            .str.replace(_RE_DATETIME, "${1}T${2}")
            .str.replace(_RE_INTEGRAL_FLOAT, "$1")
        )
        .alias(c)
        for c in df.columns
    )
    report = ReadReport(filename=filename, kind=kind, sheet=chosen)
    offset = _xlsx_first_row(data, chosen) if kind == "xlsx" else 0
    report.header_row = header_row + offset
    return df, report


def _check_zip_bomb(data: bytes, filename: str, settings: Settings) -> None:
    """Read sizes from the zip central directory before anything is inflated."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise UnsupportedFileTypeError(
            f"'{filename}' is a damaged XLSX ({exc}). Re-export it and drop it again.", file=filename
        ) from exc
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    ratio = total / max(packed, 1)
    if total > settings.xlsx_max_uncompressed_bytes or ratio > settings.xlsx_max_ratio:
        raise ZipBombError(
            f"'{filename}' would inflate to {total:,} bytes ({ratio:.0f}x its size), over the limits "
            f"({settings.xlsx_max_uncompressed_bytes:,} bytes, {settings.xlsx_max_ratio:.0f}x). Export it as "
            "CSV, or raise SNAPMAP_XLSX_MAX_UNCOMPRESSED_BYTES / SNAPMAP_XLSX_MAX_RATIO if it is genuine.",
            file=filename,
            uncompressed_bytes=total,
            ratio=round(ratio, 1),
        )


def _xlsx_first_row(data: bytes, sheet: str | None) -> int:
    """Calamine drops leading empty rows; the sheet's <dimension ref="B3:…"> says how many (0 if unknown)."""
    if sheet is None:
        return 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            workbook = zf.read("xl/workbook.xml").decode("utf-8", "replace")
            rels = zf.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
            rid = None
            for tag in re.findall(r"<(?:\w+:)?sheet\b[^>]*>", workbook):
                name = re.search(r'\bname="([^"]*)"', tag)
                if name and _xml_unescape(name.group(1)) == sheet:
                    found = re.search(r'\br:id="([^"]*)"|\bid="([^"]*)"', tag)
                    rid = found and (found.group(1) or found.group(2))
                    break
            target = None
            for tag in re.findall(r"<Relationship\b[^>]*>", rels):
                if rid and f'Id="{rid}"' in tag:
                    found = re.search(r'Target="([^"]*)"', tag)
                    target = found and found.group(1)
            if not target:
                return 0
            path = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            with zf.open(path) as fh:
                head = fh.read(8192).decode("utf-8", "replace")
    except (KeyError, zipfile.BadZipFile, OSError):
        return 0
    found = re.search(r'<(?:\w+:)?dimension\s+ref="[A-Z]+(\d+)', head)
    return int(found.group(1)) - 1 if found else 0


def _xml_unescape(text: str) -> str:
    return (
        text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'")
    ).replace("&amp;", "&")


# -- headers and final guards ----------------------------------------------------------------------------
def _find_header_row(rows: list[list[Any]]) -> int:
    """Skip title lines: the header is the first early row nearly as wide as the table that looks like one."""
    if not rows:
        return 0
    filled = [sum(1 for c in r if c is not None and str(c).strip()) for r in rows]
    width = max(filled)
    if width <= 1:
        return 0
    search = range(min(HEADER_SEARCH_ROWS, len(rows)))
    for i in search:
        if filled[i] >= max(2, 0.5 * width) and _looks_like_header(rows[i]):
            return i
    for i in search:
        if filled[i] >= 0.8 * width:
            return i
    return 0


def _looks_like_header(row: list[Any]) -> bool:
    """Headers are mostly distinct words; a row of numbers, dates or amounts is data."""
    cells = [str(c).strip() for c in row if c is not None and str(c).strip()]
    data_like = sum(1 for c in cells if _RE_DATA_CELL.match(c))
    return data_like * 2 < len(cells) and len(set(cells)) * 2 > len(cells)


def clean_headers(raw: list[Any]) -> tuple[list[str], list[str]]:
    """Trim; blank → `col_N` (1-based); duplicates → `Name_2`, `Name_3`. Returns (names, warnings)."""
    names: list[str] = []
    warnings: list[str] = []
    taken: set[str] = set()
    trimmed = [("" if h is None else str(h)).strip() for h in raw]
    reserved = {h for h in trimmed if h}
    for pos, header in enumerate(trimmed, start=1):
        name = header or f"col_{pos}"
        if name in taken:
            n = 2
            while f"{name}_{n}" in taken or f"{name}_{n}" in reserved:
                n += 1
            warnings.append(f"duplicate header '{name}' at column {pos} renamed to '{name}_{n}'")
            name = f"{name}_{n}"
        taken.add(name)
        names.append(name)
    return names, warnings


def _finish(raw: pl.DataFrame, report: ReadReport, settings: Settings) -> pl.DataFrame:
    """Header row → names, then the column-count and cell-size guards."""
    filename = report.filename
    if raw.height == 0:
        raise EmptyFileError(f"'{filename}' has no header row. Re-export it with its header.", file=filename)
    if raw.width > settings.max_columns:
        raise _too_many_columns(filename, raw.width, settings)
    header = list(raw.row(0))
    names, warnings = clean_headers(header)
    report.warnings.extend(warnings)
    df = raw.slice(1)
    df.columns = names
    df = df.with_columns(pl.col(c).cast(pl.String) for c, t in df.schema.items() if t != pl.String)
    check_cells(df, filename, settings)
    report.rows = df.height
    report.columns = list(df.columns)
    return df


def check_cells(df: pl.DataFrame, filename: str, settings: Settings) -> None:
    """The cell-size guard: no text cell over `max_cell_bytes` (a broken quote swallowing rows)."""
    text = df.select(pl.col(pl.String))
    if text.height == 0 or text.width == 0:
        return
    sizes = text.select(pl.all().str.len_bytes().max()).row(0)
    for name, size in zip(text.columns, sizes, strict=True):
        if size is not None and size > settings.max_cell_bytes:
            raise CellTooLargeError(
                f"'{filename}' column '{name}' has a cell of {size:,} bytes, over the "
                f"{settings.max_cell_bytes:,} byte limit. Check the export (a broken quote "
                "often swallows rows) or raise SNAPMAP_MAX_CELL_BYTES.",
                file=filename,
                column=name,
                bytes=size,
            )


def _too_large(filename: str, size: int, settings: Settings) -> FileTooLargeError:
    return FileTooLargeError(
        f"'{filename}' is {size:,} bytes, over the {settings.max_file_bytes:,} byte limit. Split the export "
        "or raise SNAPMAP_MAX_FILE_BYTES.",
        file=filename,
        bytes=size,
        limit=settings.max_file_bytes,
    )


def _too_many_columns(filename: str, count: int, settings: Settings) -> TooManyColumnsError:
    return TooManyColumnsError(
        f"'{filename}' has {count:,} columns, over the {settings.max_columns:,} limit. Export only the "
        "columns needed, or raise SNAPMAP_MAX_COLUMNS.",
        file=filename,
        columns=count,
        limit=settings.max_columns,
    )


def _undecodable(filename: str, why: str) -> DecodeError:
    return DecodeError(
        f"'{filename}' could not be decoded as text: {why}. Re-export it as UTF-8 CSV (or XLSX).",
        file=filename,
    )
