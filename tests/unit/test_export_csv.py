"""Eightfold CSV: spec column order, blanks for unmapped columns, booleans and lists, custom fields in their
own file, the skip rule, the Excel formula guard on the quarantine CSV, and the zip bundle."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import polars as pl
import pytest

from snapmap_pipeline.core.export.csv import (
    bundle,
    custom_file_name,
    write_eightfold_csv,
    write_quarantine_csv,
)
from snapmap_pipeline.core.schema import EntitySchema, load_all, load_schema
from snapmap_pipeline.errors import ExportError
from tests.unit.synthetic import synthetic_rows


@pytest.fixture(scope="module")
def employee() -> EntitySchema:
    return load_schema("employee")


def _read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def _spec_columns(schema: EntitySchema, operation: str) -> list[str]:
    return [f.name for f in schema.fields_for(operation)]


@pytest.mark.parametrize("entity", sorted(load_all()))
def test_every_spec_column_in_spec_order(entity: str, tmp_path: Path) -> None:
    schema = load_schema(entity)
    frame = synthetic_rows(schema, "ingest", n=3, custom=False)
    # Shuffle the frame's columns: the output order must come from the schema, not the frame.
    frame = frame.select(sorted(frame.columns, reverse=True))
    report = write_eightfold_csv(frame, schema, "ingest", tmp_path / f"{schema.csv_file}.csv")
    assert not report.skipped, report.reason
    header, *rows = _read(report.path)
    assert header == _spec_columns(schema, "ingest")
    assert "_row" not in header
    assert not any(f.input_only and f.name in header for f in schema.fields)
    assert len(rows) == report.rows == 3


def test_unmapped_columns_are_present_and_blank(employee: EntitySchema, tmp_path: Path) -> None:
    full = synthetic_rows(employee, "ingest", n=2, custom=False)
    required = employee.required_for("ingest", "csv")
    frame = full.select("_row", *required)
    report = write_eightfold_csv(frame, employee, "ingest", tmp_path / "EMPLOYEE-MAIN.csv")
    header, *rows = _read(report.path)
    assert header == _spec_columns(employee, "ingest")
    for row in rows:
        cells = dict(zip(header, row, strict=True))
        assert all(cells[c] for c in required)
        assert all(cells[c] == "" for c in header if c not in required)


def test_booleans_lower_case_and_lists_in_one_quoted_cell(tmp_path: Path) -> None:
    schemas = load_all()
    with_bool = [s for s in schemas.values() if any(f.type == "boolean" for f in s.fields_for("ingest"))]
    if not with_bool:
        pytest.skip("no entity has a boolean field")
    schema = with_bool[0]
    boolean = next(f.name for f in schema.fields_for("ingest") if f.type == "boolean")
    lists = [f.name for f in schema.fields_for("ingest") if f.type == "list"]
    frame = synthetic_rows(schema, "ingest", n=2, custom=False).with_columns(
        pl.Series(boolean, ["TRUE", "False"]),
        *[pl.Series(name, [" a , b,,c ", "solo"]) for name in lists],
    )
    report = write_eightfold_csv(frame, schema, "ingest", tmp_path / "main.csv")
    assert not report.skipped, report.reason
    header, *rows = _read(report.path)
    assert [dict(zip(header, r, strict=True))[boolean] for r in rows] == ["true", "false"]
    text = report.path.read_text(encoding="utf-8")
    for name in lists:
        assert [dict(zip(header, r, strict=True))[name] for r in rows] == ["a,b,c", "solo"]
        assert '"a,b,c"' in text


def test_utf8_without_bom_and_values_kept_exactly(employee: EntitySchema, tmp_path: Path) -> None:
    frame = synthetic_rows(employee, "ingest", n=2, custom=False).with_columns(
        TITLE=pl.Series(["=cmd|' /C calc'!A0", 'Zoë "quoted", comma'])
    )
    report = write_eightfold_csv(frame, employee, "ingest", tmp_path / "EMPLOYEE-MAIN.csv")
    raw = report.path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    header, *rows = _read(report.path)
    titles = [dict(zip(header, r, strict=True))["TITLE"] for r in rows]
    assert titles == ["=cmd|' /C calc'!A0", 'Zoë "quoted", comma']  # the machine feed is not altered


def test_custom_columns_go_to_the_custom_fields_file(employee: EntitySchema, tmp_path: Path) -> None:
    frame = synthetic_rows(employee, "ingest", n=2)
    customs = [c for c in frame.columns if c.startswith("EFCUSTOM")]
    assert customs
    report = write_eightfold_csv(frame, employee, "ingest", tmp_path / "EMPLOYEE-MAIN.csv")
    main_header = _read(report.path)[0]
    assert not any(c.startswith("EFCUSTOM") for c in main_header)
    custom_path = tmp_path / custom_file_name(employee)
    assert report.files == [report.path, custom_path]
    header, *rows = _read(custom_path)
    assert header == [employee.key, *customs]
    assert [r[0] for r in rows] == frame[employee.key].to_list()


def test_csv_skipped_when_a_csv_required_field_is_unmapped(employee: EntitySchema, tmp_path: Path) -> None:
    only_xml = set(employee.required_for("ingest", "csv")) - set(employee.required_for("ingest", "xml"))
    assert only_xml, "employee's CSV spec requires more than its XSD"
    dropped = sorted(only_xml)[0]
    frame = synthetic_rows(employee, "ingest", n=2, custom=False).drop(dropped)
    path = tmp_path / "EMPLOYEE-MAIN.csv"
    report = write_eightfold_csv(frame, employee, "ingest", path)
    assert report.skipped
    assert dropped in report.reason
    assert "XML" in report.reason
    assert not path.exists()
    assert report.to_dict()["skipped"] is True


def test_csv_skipped_when_a_csv_required_field_has_blanks(employee: EntitySchema, tmp_path: Path) -> None:
    required = employee.required_for("ingest", "csv")[-1]
    frame = synthetic_rows(employee, "ingest", n=3, custom=False).with_columns(
        pl.Series(required, ["x", None, "  "], dtype=pl.String)
    )
    report = write_eightfold_csv(frame, employee, "ingest", tmp_path / "EMPLOYEE-MAIN.csv")
    assert report.skipped
    assert required in report.reason
    assert "2 blank rows" in report.reason


def test_delete_csv_has_only_the_delete_columns(employee: EntitySchema, tmp_path: Path) -> None:
    frame = synthetic_rows(employee, "ingest", n=2)
    report = write_eightfold_csv(frame, employee, "delete", tmp_path / "EMPLOYEE-MAIN.csv")
    assert _read(report.path)[0] == _spec_columns(employee, "delete")
    assert report.files == [report.path]


def test_empty_frame_writes_the_header_only(employee: EntitySchema, tmp_path: Path) -> None:
    frame = synthetic_rows(employee, "ingest", n=0, custom=False)
    report = write_eightfold_csv(frame, employee, "ingest", tmp_path / "EMPLOYEE-MAIN.csv")
    assert not report.skipped
    assert _read(report.path) == [_spec_columns(employee, "ingest")]


def test_quarantine_csv_guards_formulas_for_excel(tmp_path: Path) -> None:
    cells = ["=1+1", "+SUM(A1)", "-2", "@cmd", "\tx", "\rx", "plain", "a=b", None]
    df = pl.DataFrame(
        {"_row": list(range(2, 2 + len(cells))), "name": cells, "_message": ["m"] * len(cells)},
        schema={"_row": pl.Int64, "name": pl.String, "_message": pl.String},
    )
    path = write_quarantine_csv(df, tmp_path / "quarantine.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with a BOM
    with path.open(encoding="utf-8-sig", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    assert header == ["_row", "name", "_message"]
    names = [r[1] for r in rows]
    for original, written in zip(cells, names, strict=True):
        if original is None:
            assert written == ""
        elif original[0] in "=+-@\t\r":
            assert written == "'" + original
        else:
            assert written == original
    assert [r[0] for r in rows] == [str(i) for i in range(2, 2 + len(cells))]  # numbers untouched


def test_bundle_puts_files_at_the_zip_root(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = tmp_path / "a" / "EMPLOYEE-MAIN.csv"
    second = tmp_path / "b" / "EMPLOYEE-CUSTOM-FIELDS.csv"
    first.write_text("x\n1\n", encoding="utf-8")
    second.write_text("y\n2\n", encoding="utf-8")
    zip_path = bundle([first, second], tmp_path / "out" / "bundle.zip")
    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == ["EMPLOYEE-CUSTOM-FIELDS.csv", "EMPLOYEE-MAIN.csv"]
        assert zf.read("EMPLOYEE-MAIN.csv") == first.read_bytes()


def test_bundle_refuses_two_files_with_one_name(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "EMPLOYEE-MAIN.csv").write_text("x\n", encoding="utf-8")
    with pytest.raises(ExportError) as err:
        bundle(
            [tmp_path / "a" / "EMPLOYEE-MAIN.csv", tmp_path / "b" / "EMPLOYEE-MAIN.csv"], tmp_path / "z.zip"
        )
    assert err.value.code == "bundle_duplicate_name"
