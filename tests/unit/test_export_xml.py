"""The streaming XML writer: escaping, forbidden characters, lists, groups, custom fields, the update and
delete forms, empty input, flat memory, and (property) any text round-trips. Every document written here
is also checked against our own XSD for its entity and operation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import hypothesis.strategies as st
import polars as pl
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from lxml import etree

from snapmap_pipeline.core.export.xml import FORBIDDEN_XML10, own_xsd, validate_xml, write_xml
from snapmap_pipeline.core.export.xsd import xsd_text
from snapmap_pipeline.core.schema import EntitySchema, load_schema
from snapmap_pipeline.errors import UnknownEntityError
from tests.unit.synthetic import synthetic_rows

FORBIDDEN = [chr(c) for c in [*range(0, 9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF]]


@pytest.fixture(scope="module")
def employee() -> EntitySchema:
    return load_schema("employee")


def _own_xsd(schema: EntitySchema, operation: str, tmp_path: Path) -> Path:
    """Our XSD for the operation, generated now (the checked-in copy is compared in test_xsd_generation)."""
    path = tmp_path / f"{schema.entity}_{operation}.xsd"
    path.write_text(xsd_text(schema, operation), encoding="utf-8")
    return path


def _write(frame: pl.DataFrame, schema: EntitySchema, operation: str, tmp_path: Path, **kw):
    path = tmp_path / f"{schema.entity}_{operation}.xml"
    report = write_xml(frame, schema, operation, path, **kw)
    return report, etree.parse(str(path))


def _records(doc: etree._ElementTree) -> list[etree._Element]:
    return list(doc.getroot())


def _base(n: int = 2) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "_row": pl.Series(range(2, n + 2), dtype=pl.Int64),
            "EMPLOYEE_ID": [f"E{i}" for i in range(n)],
            "FIRST_NAME": [f"First{i}" for i in range(n)],
            "LAST_NAME": [f"Last{i}" for i in range(n)],
            "EMAIL": [f"p{i}@corp.example" for i in range(n)],
            "LAST_ACTIVITY_TS": ["2024-03-01T09:00:00"] * n,
        }
    )


def test_escaping_round_trips_markup(employee: EntitySchema, tmp_path: Path) -> None:
    nasty = ["A & B <c> \"q\" 's'", "x]]>y", "line1\r\nline2\rend", "  padded  ", "Zoë ✓ 𝄞"]
    frame = _base(len(nasty)).with_columns(pl.Series("TITLE", nasty))
    report, doc = _write(frame, employee, "ingest", tmp_path)
    assert report.rows == len(nasty)
    assert report.removed_chars == 0
    assert [r.findtext("title") for r in _records(doc)] == nasty
    assert validate_xml(report.path, _own_xsd(employee, "ingest", tmp_path)) == []


def test_declaration_root_and_record_names_come_from_the_schema(
    employee: EntitySchema, tmp_path: Path
) -> None:
    report, doc = _write(_base(1), employee, "ingest", tmp_path)
    assert report.path.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert doc.getroot().tag == employee.xml.root
    assert {r.tag for r in _records(doc)} == {employee.xml.record}
    assert report.bytes == report.path.stat().st_size


def test_forbidden_characters_are_removed_and_counted(employee: EntitySchema, tmp_path: Path) -> None:
    titles = ["ok\x00one", "\x0btwo\x1f", "three\ufffe\uffff", None, "clean"]
    frame = _base(len(titles)).with_columns(pl.Series("TITLE", titles, dtype=pl.String))
    frame = frame.with_columns(pl.Series("PHONE", ["1\x01, 2", None, None, None, "3"]))
    expected_removed = sum(sum(ch in FORBIDDEN for ch in t or "") for t in [*titles, "1\x01, 2"])
    report, doc = _write(frame, employee, "ingest", tmp_path)
    assert report.removed_chars == expected_removed
    got = [r.findtext("title") for r in _records(doc)]
    assert got == [None if t is None else "".join(ch for ch in t if ch not in FORBIDDEN) for t in titles]
    assert [p.text for p in _records(doc)[0].iterfind("phone_list/phone")] == ["1", "2"]
    assert validate_xml(report.path, _own_xsd(employee, "ingest", tmp_path)) == []


def test_a_value_made_only_of_forbidden_characters_writes_no_element(
    employee: EntitySchema, tmp_path: Path
) -> None:
    frame = _base(1).with_columns(TITLE=pl.lit("\x01\x02"), USER_ID=pl.lit(""))
    report, doc = _write(frame, employee, "ingest", tmp_path)
    assert report.removed_chars == 2
    record = _records(doc)[0]
    assert record.find("title") is None
    assert record.find("user_id") is None  # blank: absent, not an empty (and invalid) NoSpaceString
    assert validate_xml(report.path, _own_xsd(employee, "ingest", tmp_path)) == []


def test_lists_split_trim_and_drop_blank_items(employee: EntitySchema, tmp_path: Path) -> None:
    cells = ["a,b", " a , b ,, c ", ",", None, "solo", "x & y, <z>"]
    frame = _base(len(cells)).with_columns(pl.Series("SPECIALISED_SKILLS_LIST", cells, dtype=pl.String))
    report, doc = _write(frame, employee, "ingest", tmp_path)
    for cell, record in zip(cells, _records(doc), strict=True):
        items = [s.strip() for s in (cell or "").split(",") if s.strip()]
        container = record.find("specialised_skills_list")
        if not items:
            assert container is None  # an empty list writes no container at all
        else:
            assert [e.text for e in container.iterfind("skill")] == items
    assert validate_xml(report.path, _own_xsd(employee, "ingest", tmp_path)) == []


def test_list_with_a_repeated_group_wraps_each_item(employee: EntitySchema, tmp_path: Path) -> None:
    spec = employee.field("RM_USER_GROUP_LIST")
    assert spec.xml_repeat  # the case this test is about: the repeated element is a group
    frame = _base(1).with_columns(RM_USER_GROUP_LIST=pl.lit("g1, g2"))
    report, doc = _write(frame, employee, "ingest", tmp_path)
    parts = spec.xml.split("/")
    i = parts.index(spec.xml_repeat)
    repeated = _records(doc)[0].findall("/".join(parts[: i + 1]))
    assert [r.findtext("/".join(parts[i + 1 :])) for r in repeated] == ["g1", "g2"]
    assert validate_xml(report.path, _own_xsd(employee, "ingest", tmp_path)) == []


def test_group_appears_only_when_a_child_has_a_value(employee: EntitySchema, tmp_path: Path) -> None:
    nested = [f for f in employee.xml_fields_for("ingest") if "/" in f.xml and f.type != "list"]
    nested = [f for f in nested if f.xml.split("/")[0] not in ("email_list", "personal_email_list")]
    assert nested, "employee has a nested non-list field (candidate_data/...)"
    spec = nested[0]
    group = spec.xml.split("/")[0]
    value = (spec.values or ["value"])[0]
    frame = _base(2).with_columns(pl.Series(spec.name, [value, None], dtype=pl.String))
    report, doc = _write(frame, employee, "ingest", tmp_path)
    first, second = _records(doc)
    assert first.findtext(spec.xml) == value
    assert second.find(group) is None
    assert validate_xml(report.path, _own_xsd(employee, "ingest", tmp_path)) == []


def test_custom_columns_become_custom_info_and_multi_value_lists(
    employee: EntitySchema, tmp_path: Path
) -> None:
    frame = _base(2).with_columns(
        pl.Series("EFCUSTOM_STR_COST_CENTER", ["CC & 1", None]),
        pl.Series("EFCUSTOM_DATE_REVIEWED", ["2024-02-01", "2024-02-02"]),
        pl.Series("EFCUSTOMLIST_INT_BANDS", ["1, 2", None]),
    )
    report, doc = _write(frame, employee, "ingest", tmp_path)
    first, second = _records(doc)
    fields = {
        f.findtext("field_name"): (f.findtext("data_type"), f.findtext("field_value"))
        for f in first.iterfind("custom_info/custom_field")
    }
    assert fields == {"COST_CENTER": ("string", "CC & 1"), "REVIEWED": ("date", "2024-02-01")}
    (mv,) = first.findall("custom_multi_value_list/custom_mv_field")
    assert mv.findtext("field_name") == "BANDS"
    assert mv.findtext("data_type") == "int"
    assert [v.text for v in mv.iterfind("data_list/field_value")] == ["1", "2"]
    assert [f.findtext("field_name") for f in second.iterfind("custom_info/custom_field")] == ["REVIEWED"]
    assert second.find("custom_multi_value_list") is None
    assert validate_xml(report.path, _own_xsd(employee, "ingest", tmp_path)) == []


def test_unmapped_and_csv_only_fields_are_not_written(employee: EntitySchema, tmp_path: Path) -> None:
    csv_only = [f.name for f in employee.fields if f.xml is None]
    assert csv_only
    frame = _base(1).with_columns([pl.lit("x").alias(n) for n in csv_only])
    report, doc = _write(frame, employee, "ingest", tmp_path)
    written = {e.tag for e in _records(doc)[0].iter()}
    assert written == {employee.xml.record, "employee_id", "first_name", "last_name", "email_list", "email",
                       "last_activity_ts"}  # fmt: skip
    assert validate_xml(report.path, _own_xsd(employee, "ingest", tmp_path)) == []


def test_delete_form_carries_only_the_delete_fields(employee: EntitySchema, tmp_path: Path) -> None:
    frame = synthetic_rows(employee, "ingest", n=3)
    report, doc = _write(frame, employee, "delete", tmp_path)
    allowed = {f.xml.split("/")[0] for f in employee.xml_fields_for("delete")}
    for record in _records(doc):
        assert {child.tag for child in record} <= allowed
        assert record.find("custom_info") is None
    assert report.rows == 3
    assert validate_xml(report.path, _own_xsd(employee, "delete", tmp_path)) == []


@pytest.mark.parametrize("operation", ["update", "upsert"])
def test_update_and_upsert_use_the_update_form(
    employee: EntitySchema, operation: str, tmp_path: Path
) -> None:
    frame = _base(2).select("_row", "EMPLOYEE_ID", "FIRST_NAME")
    report, doc = _write(frame, employee, operation, tmp_path)
    attributes = {r.get("operation") for r in _records(doc)}
    assert attributes == ({"upsert"} if operation == "upsert" else {None})
    assert validate_xml(report.path, _own_xsd(employee, operation, tmp_path)) == []
    assert own_xsd("employee", operation).name == "employee_update.xsd"


def test_unsupported_operation_fails_before_writing(employee: EntitySchema, tmp_path: Path) -> None:
    with pytest.raises(UnknownEntityError):
        write_xml(_base(1), employee, "merge", tmp_path / "x.xml")
    assert not (tmp_path / "x.xml").exists()


@pytest.mark.parametrize("operation", ["ingest", "update", "delete"])
def test_empty_frame_gives_a_valid_empty_list(employee: EntitySchema, operation: str, tmp_path: Path) -> None:
    report, doc = _write(_base(0), employee, operation, tmp_path)
    assert report.rows == 0
    assert doc.getroot().tag == employee.xml.root
    assert len(doc.getroot()) == 0
    assert validate_xml(report.path, _own_xsd(employee, operation, tmp_path)) == []


def test_chunks_lazy_frames_and_iterables_give_the_same_file(employee: EntitySchema, tmp_path: Path) -> None:
    frame = synthetic_rows(employee, "ingest", n=25)
    one = write_xml(frame, employee, "ingest", tmp_path / "one.xml")
    chunked = write_xml(frame, employee, "ingest", tmp_path / "chunked.xml", chunk_rows=4)
    lazy = write_xml(frame.lazy(), employee, "ingest", tmp_path / "lazy.xml", chunk_rows=7)
    parts = write_xml(iter(frame.iter_slices(10)), employee, "ingest", tmp_path / "parts.xml")
    text = one.path.read_bytes()
    assert chunked.path.read_bytes() == text
    assert lazy.path.read_bytes() == text
    assert parts.path.read_bytes() == text
    assert one.rows == chunked.rows == lazy.rows == parts.rows == 25
    assert validate_xml(one.path, _own_xsd(employee, "ingest", tmp_path)) == []


def test_validate_xml_reports_errors_without_cell_values(employee: EntitySchema, tmp_path: Path) -> None:
    frame = _base(3).with_columns(
        LAST_ACTIVITY_TS=pl.Series(["not-a-date secret@corp.example", "2024-01-01T00:00:00", "bad"]),
        EMPLOYEE_ID=pl.Series(["has space", "E1", "E1"]),
    )
    report, _ = _write(frame, employee, "ingest", tmp_path)
    errors = validate_xml(report.path, _own_xsd(employee, "ingest", tmp_path))
    assert errors
    assert len(errors) <= 20
    joined = "\n".join(errors)
    assert "last_activity_ts" in joined
    for value in ("secret@corp.example", "not-a-date", "has space", "bad'"):
        assert value not in joined


def test_validate_xml_caps_the_error_list(employee: EntitySchema, tmp_path: Path) -> None:
    frame = _base(60).with_columns(LAST_ACTIVITY_TS=pl.lit("never"))
    report, _ = _write(frame, employee, "ingest", tmp_path)
    errors = validate_xml(report.path, _own_xsd(employee, "ingest", tmp_path), max_errors=5)
    assert len(errors) == 5


def _chunk_stream(n_chunks: int, size: int) -> Iterator[pl.DataFrame]:
    """Rows built chunk by chunk, so the input itself never holds every row."""
    for k in range(n_chunks):
        i = pl.int_range(k * size, (k + 1) * size, eager=True)
        yield pl.DataFrame(
            {
                "_row": i + 2,
                "EMPLOYEE_ID": "E" + i.cast(pl.String),
                "FIRST_NAME": "First & " + i.cast(pl.String),
                "LAST_NAME": "Last" + i.cast(pl.String),
                "EMAIL": "p" + i.cast(pl.String) + "@corp.example",
                "LAST_ACTIVITY_TS": pl.Series(["2024-03-01T09:00:00"] * size),
                "PHONE": "1" + i.cast(pl.String) + ", 2" + i.cast(pl.String),
                "DETAILED_TITLE": "A long detailed title " * 15 + i.cast(pl.String),
            }
        )


def _peak_rss_growth(fn) -> int:
    """Peak RSS above the starting RSS while `fn` runs, sampled every few milliseconds."""
    proc = psutil.Process()
    start = proc.memory_info().rss
    peak = start
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return peak - start


def test_memory_does_not_grow_with_rows(employee: EntitySchema, tmp_path: Path) -> None:
    size = 10_000
    write_xml(_chunk_stream(1, size), employee, "ingest", tmp_path / "warm.xml", chunk_rows=size)
    path = tmp_path / "big.xml"
    growth = _peak_rss_growth(
        lambda: write_xml(_chunk_stream(20, size), employee, "ingest", path, chunk_rows=size)
    )
    file_size = path.stat().st_size
    # 200k rows: a writer holding the document (or even its text) would grow by more than the file;
    # a streaming one grows by about one chunk (allocator slack under a busy machine included).
    assert file_size > 100 * 1024 * 1024
    assert growth < file_size / 2


# -- property: any text round-trips, minus what XML 1.0 forbids ------------------------------------------
_TEXT_FIELDS = ["FIRST_NAME", "LAST_NAME", "TITLE", "LOCATION", "EFCUSTOM_STR_NOTE"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(max_size=40), min_size=len(_TEXT_FIELDS), max_size=len(_TEXT_FIELDS)))
def test_any_text_round_trips_minus_forbidden_characters(
    employee: EntitySchema, tmp_path: Path, texts: list[str]
) -> None:
    frame = _base(1).with_columns(
        [pl.lit(t, dtype=pl.String).alias(n) for n, t in zip(_TEXT_FIELDS, texts, strict=True)]
    )
    path = tmp_path / "prop.xml"
    report = write_xml(frame, employee, "ingest", path)
    record = etree.parse(str(path)).getroot()[0]  # well-formed, or this raises
    forbidden = sum(ch in FORBIDDEN for t in texts for ch in t)
    assert report.removed_chars == forbidden
    for name, text in zip(_TEXT_FIELDS, texts, strict=True):
        expected = "".join(ch for ch in text if ch not in FORBIDDEN)
        if name.startswith("EFCUSTOM"):
            got = record.findtext("custom_info/custom_field/field_value")
        else:
            got = record.findtext(employee.field(name).xml)
        assert got == (expected or None)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cell=st.text(max_size=60))
def test_any_list_cell_gives_its_trimmed_items(employee: EntitySchema, tmp_path: Path, cell: str) -> None:
    frame = _base(1).with_columns(PHONE=pl.lit(cell, dtype=pl.String))
    path = tmp_path / "prop_list.xml"
    write_xml(frame, employee, "ingest", path)
    record = etree.parse(str(path)).getroot()[0]
    cleaned = "".join(ch for ch in cell if ch not in FORBIDDEN)
    expected = [s.strip() for s in cleaned.split(",") if s.strip()]
    assert [e.text for e in record.iterfind("phone_list/phone")] == expected


def test_forbidden_pattern_matches_the_xml_spec() -> None:
    import re

    # Rust and Python regex agree on this class; check it against XML 1.0's Char production.
    pattern = re.compile(FORBIDDEN_XML10.replace("\\x{FFFE}", "\\uFFFE").replace("\\x{FFFF}", "\\uFFFF"))
    for code in [*range(0, 0xD800), *range(0xE000, 0x110000, 97), 0xFFFE, 0xFFFF]:
        ch = chr(code)
        allowed = (
            code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code >= 0x10000
        )
        assert bool(pattern.fullmatch(ch)) is not allowed, hex(code)


def test_validate_xml_reports_a_malformed_file(employee: EntitySchema, tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_text('<?xml version="1.0"?>\n<EF_Employee_List><EF_Employee>\n', encoding="utf-8")
    errors = validate_xml(path, _own_xsd(employee, "ingest", tmp_path))
    assert len(errors) == 1
    assert errors[0].startswith("line ")


def test_a_column_full_in_one_chunk_and_blank_in_another_writes_the_same_records(
    employee: EntitySchema, tmp_path: Path
) -> None:
    # Chunks of 2: the first has every value, the others a null, a "" or only forbidden characters, so
    # each chunk takes a different way of writing the same element and its group. (Rows without an email
    # fail the employee XSD; validation is not the point here, the validator quarantines them.)
    frame = _base(6).with_columns(
        pl.Series("EMAIL", ["a@corp.example", "b@corp.example", None, "c@corp.example", "", "\x01"]),
        pl.Series("GENDER", ["male", "female", "male", None, "", "female"]),
    )
    whole = write_xml(frame, employee, "ingest", tmp_path / "whole.xml")
    chunked = write_xml(frame, employee, "ingest", tmp_path / "chunked.xml", chunk_rows=2)
    assert chunked.path.read_bytes() == whole.path.read_bytes()
    records = _records(etree.parse(str(whole.path)))
    assert [r.find("email_list") is not None for r in records] == [True, True, False, True, False, False]
    assert [r.find("candidate_data") is not None for r in records] == [True, True, True, False, False, True]


def test_chunks_built_in_threads_give_the_same_file_and_checks(
    employee: EntitySchema, tmp_path: Path
) -> None:
    from snapmap_pipeline.core.export.xml import XsdChecker

    frame = synthetic_rows(employee, "ingest", n=25)
    xsd = _own_xsd(employee, "ingest", tmp_path)
    one = write_xml(frame, employee, "ingest", tmp_path / "one.xml", chunk_rows=4)
    checker = XsdChecker(xsd, employee.xml.root, employee.xml.record, sample_records=2)
    threaded = write_xml(
        frame, employee, "ingest", tmp_path / "threaded.xml", chunk_rows=4, threads=3, on_chunk=checker
    )
    assert threaded.path.read_bytes() == one.path.read_bytes()
    assert threaded.rows == 25
    assert checker.finish() == []
    assert (checker.written, checker.checked) == (25, 2 * 6 + 1)


def test_checker_errors_name_the_file_line_when_values_hold_line_breaks(
    employee: EntitySchema, tmp_path: Path
) -> None:
    from snapmap_pipeline.core.export.xml import XsdChecker

    frame = _base(4).with_columns(
        pl.Series("FIRST_NAME", ["one\ntwo", "First1", "First2", "First3"]),
        pl.Series("HIRING_DATE", ["2024-01-01", "2024-01-02", "2024-01-03", "not a date"]),
    )
    for threads in (1, 2):
        checker = XsdChecker(_own_xsd(employee, "ingest", tmp_path), employee.xml.root, employee.xml.record)
        report = write_xml(
            frame,
            employee,
            "ingest",
            tmp_path / f"t{threads}.xml",
            chunk_rows=2,
            on_chunk=checker,
            threads=threads,
        )
        errors = checker.finish()
        lines = report.path.read_text(encoding="utf-8").split("\n")
        bad_line = next(i for i, text in enumerate(lines, start=1) if "not a date" in text)
        assert len(errors) == 1
        assert errors[0].startswith(f"line {bad_line}:")
        assert "not a date" not in errors[0]
