"""Safe readers: dialects, encodings, Excel, headers and guards, on files each test writes itself."""

from __future__ import annotations

import codecs
import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest
import xlwt

from snapmap_pipeline.core.read import ReadReport, read_bytes, read_path
from snapmap_pipeline.errors import (
    CellTooLargeError,
    DecodeError,
    EmptyFileError,
    FileTooLargeError,
    InputError,
    SnapMapError,
    TooManyColumnsError,
    UnsupportedFileTypeError,
    ZipBombError,
)
from snapmap_pipeline.settings import Settings

NAMES = ["José", "Müller", "Zoë"]


def _settings(**kw: object) -> Settings:
    return Settings(**kw)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _all_strings(df: pl.DataFrame) -> bool:
    return all(dtype == pl.String for dtype in df.dtypes)


# -- CSV dialects ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_csv_delimiters_quotes_and_newlines(tmp_path: Path, delimiter: str, newline: str) -> None:
    d = delimiter
    text = newline.join(
        [
            f"ID{d}Name{d}Note",
            f'1{d}José{d}"has {d} inside"',
            f'2{d}Müller{d}"two{newline}lines"',
            f'3{d}Zoë{d}"say ""hi"""',
        ]
    )
    path = _write(tmp_path, "people.csv", (text + newline).encode("utf-8"))
    df, report = read_path(path)
    assert report.kind == "csv"
    assert report.delimiter == delimiter
    assert df.columns == ["ID", "Name", "Note"]
    assert df["Name"].to_list() == NAMES
    assert df["Note"].to_list() == [f"has {d} inside", f"two{newline}lines", 'say "hi"']
    assert report.rows == 3 and _all_strings(df)


def test_semicolon_file_with_decimal_commas_is_not_read_as_comma(tmp_path: Path) -> None:
    data = b"Name;Salary;Bonus\nAnna;1234,50;10,5\nBen;99,00;0,0\nCara;5;1,25\n"
    df, report = read_bytes(data, "pay.csv")
    assert report.delimiter == ";"
    assert df.row(0) == ("Anna", "1234,50", "10,5")


def test_blank_cells_are_null_and_cell_whitespace_is_kept() -> None:
    df, _ = read_bytes(b'a,b,c\n1,,""\n  x ,y,\n', "t.csv")
    assert df.row(0) == ("1", None, None)
    assert df.row(1) == ("  x ", "y", None)


def test_numbers_and_ids_stay_text_exactly() -> None:
    df, _ = read_bytes(b"id,zip,amount\n007,02134,1042.0\n", "t.csv")
    assert df.row(0) == ("007", "02134", "1042.0")
    assert _all_strings(df)


def test_rows_longer_than_the_header_keep_their_cells() -> None:
    df, report = read_bytes(b"a,b\n1,2\n3,4,5\n", "ragged.csv")
    assert df.height == 2
    assert "5" in df.row(1)
    assert any("more cells than the header" in w for w in report.warnings)


# -- encodings -------------------------------------------------------------------------------------------
def _people_csv(newline: str = "\n") -> str:
    return newline.join(["ID,Name,City", "1,José,Zürich", "2,Müller,Köln", "3,Zoë,Montréal"]) + newline


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [
        ("utf-8", b""),
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-16-le", b""),
        ("utf-16-be", b""),
        ("cp1252", b""),
        ("latin-1", b""),
    ],
)
def test_encodings_decode_names_without_mojibake(tmp_path: Path, encoding: str, prefix: bytes) -> None:
    path = _write(tmp_path, "people.csv", prefix + _people_csv("\r\n").encode(encoding))
    df, report = read_path(path)
    assert df["Name"].to_list() == NAMES
    assert df["City"].to_list() == ["Zürich", "Köln", "Montréal"]
    assert df.columns == ["ID", "Name", "City"]
    assert report.encoding is not None
    if encoding in ("cp1252", "latin-1"):
        assert report.encoding == "cp1252"


def test_cp1252_accents_only_after_the_sniffed_prefix() -> None:
    filler = "".join(f"{i},Person {i},Paris\n" for i in range(6000))  # well over the 64 KB prefix
    data = ("ID,Name,City\n" + filler + "6000,José,Zürich\n").encode("cp1252")
    df, report = read_bytes(data, "late.csv")
    assert report.encoding == "cp1252"
    assert df.row(-1) == ("6000", "José", "Zürich")
    assert df.height == 6001


def test_cyrillic_legacy_file_is_not_read_as_western() -> None:
    text = "Имя,Город\n" + "".join(f"Иван Петров,Москва {i}\n" for i in range(200))
    df, report = read_bytes(text.encode("cp1251"), "ru.csv")
    assert df.columns == ["Имя", "Город"]
    assert df.row(0) == ("Иван Петров", "Москва 0")
    assert report.encoding != "cp1252"


def test_binary_bytes_are_a_decode_error() -> None:
    data = bytes((i * 37 + 11) % 256 for i in range(4000)) + b"\x00\x01\x02"
    with pytest.raises(DecodeError) as err:
        read_bytes(data, "garbage.csv")
    assert "UTF-8" in err.value.message


# -- Excel -----------------------------------------------------------------------------------------------
def _xlsx(tmp_path: Path, name: str = "people.xlsx") -> Path:
    wb = openpyxl.Workbook()
    wb.active.title = "Blank"
    ws = wb.create_sheet("Staff")
    ws.append(["Employee Export"])
    ws.append(["Generated 2024-01-01"])
    ws.append([])
    ws.append(["ID", " Name ", "Start", "Last Login", "Salary", None])
    ws.append([1042, "José", dt.date(2024, 3, 1), dt.datetime(2024, 3, 1, 9, 30), 1234.5, "x"])
    ws.append([1043, "Müller", dt.datetime(2023, 12, 31), dt.datetime(2024, 3, 2, 17, 5, 9), 50000, None])
    ws.append([1044, "Zoë", None, None, None, None])
    other = wb.create_sheet("Other")
    other.append(["Code", "Label"])
    other.append(["A", "Alpha"])
    path = tmp_path / name
    wb.save(path)
    return path


def test_xlsx_first_non_empty_sheet_dates_iso_integers_plain(tmp_path: Path) -> None:
    df, report = read_path(_xlsx(tmp_path))
    assert report.kind == "xlsx"
    assert report.sheet == "Staff"
    assert report.header_row == 3  # title, generated line, blank row above the header
    assert df.columns == ["ID", "Name", "Start", "Last Login", "Salary", "col_6"]
    assert df["ID"].to_list() == ["1042", "1043", "1044"]
    assert df["Name"].to_list() == NAMES
    assert df["Start"].to_list() == ["2024-03-01", "2023-12-31", None]
    assert df["Last Login"].to_list() == ["2024-03-01T09:30:00", "2024-03-02T17:05:09", None]
    assert df["Salary"].to_list() == ["1234.5", "50000", None]
    assert _all_strings(df)


def test_xlsx_named_sheet_and_missing_sheet(tmp_path: Path) -> None:
    path = _xlsx(tmp_path)
    df, report = read_path(path, sheet="Other")
    assert report.sheet == "Other" and df.rows() == [("A", "Alpha")]
    with pytest.raises(InputError) as err:
        read_path(path, sheet="Nope")
    assert err.value.code == "sheet_not_found"
    assert "Staff" in err.value.message


def test_xlsx_header_row_counts_leading_empty_rows(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["B3"], ws["C3"] = "ID", "Name"
    ws["B4"], ws["C4"] = 7, "Zoë"
    path = tmp_path / "offset.xlsx"
    wb.save(path)
    df, report = read_path(path)
    assert report.header_row == 2  # sheet row 3, 0-based
    assert df.rows() == [("7", "Zoë")]


def test_xls_via_calamine(tmp_path: Path) -> None:
    wb = xlwt.Workbook()
    ws = wb.add_sheet("Staff")
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    time_style = xlwt.easyxf(num_format_str="YYYY-MM-DD HH:MM:SS")
    for col, header in enumerate(["ID", "Name", "Hired", "Seen"]):
        ws.write(0, col, header)
    ws.write(1, 0, 1042)
    ws.write(1, 1, "José")
    ws.write(1, 2, dt.date(2024, 3, 1), date_style)
    ws.write(1, 3, dt.datetime(2024, 3, 1, 8, 15), time_style)
    path = tmp_path / "legacy.xls"
    wb.save(str(path))
    df, report = read_path(path)
    assert report.kind == "xls"
    assert df.row(0) == ("1042", "José", "2024-03-01", "2024-03-01T08:15:00")


def test_xlsx_under_a_csv_name_is_read_as_xlsx_with_a_warning(tmp_path: Path) -> None:
    data = _xlsx(tmp_path).read_bytes()
    df, report = read_bytes(data, "actually_excel.csv")
    assert report.kind == "xlsx" and df.height == 3
    assert any("content is xlsx" in w for w in report.warnings)


def test_xlsx_with_no_cells_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.xlsx"
    openpyxl.Workbook().save(path)
    with pytest.raises(EmptyFileError):
        read_path(path)


# -- headers ---------------------------------------------------------------------------------------------
def test_headers_trimmed_blank_named_and_duplicates_made_unique() -> None:
    df, report = read_bytes(b" ID ,Name,,Name,Name_2\n1,a,b,c,d\n", "h.csv")
    assert df.columns == ["ID", "Name", "col_3", "Name_3", "Name_2"]
    assert df.row(0) == ("1", "a", "b", "c", "d")
    assert any("duplicate header 'Name'" in w for w in report.warnings)


def test_title_lines_above_the_header_are_skipped() -> None:
    data = b"Employee Export\nGenerated 2024-01-01\n\nID,First Name,Last Name,Email\n1,Ann,Lee,a@x.com\n"
    df, report = read_bytes(data, "export.csv")
    assert report.header_row == 3
    assert df.columns == ["ID", "First Name", "Last Name", "Email"]
    assert df.rows() == [("1", "Ann", "Lee", "a@x.com")]


def test_first_row_is_the_header_when_there_is_no_title() -> None:
    df, report = read_bytes(b"Name,Dept\nAnn,Sales\nBen,HR\n", "plain.csv")
    assert report.header_row == 0 and df.height == 2


def test_header_only_file_gives_an_empty_frame_with_columns() -> None:
    df, report = read_bytes(b"ID,Name,Email\r\n", "empty_rows.csv")
    assert df.columns == ["ID", "Name", "Email"] and df.height == 0
    assert report.rows == 0 and _all_strings(df)


def test_report_to_dict_is_json_ready() -> None:
    _, report = read_bytes(b"a;b\n1;2\n", "r.csv")
    assert isinstance(report, ReadReport)
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["delimiter"] == ";" and payload["columns"] == ["a", "b"] and payload["rows"] == 1


# -- guards ----------------------------------------------------------------------------------------------
def test_file_too_large(tmp_path: Path) -> None:
    data = b"a,b\n" + b"1,2\n" * 100
    with pytest.raises(FileTooLargeError) as err:
        read_bytes(data, "big.csv", settings=_settings(max_file_bytes=100))
    assert "SNAPMAP_MAX_FILE_BYTES" in err.value.message
    with pytest.raises(FileTooLargeError):
        read_path(_write(tmp_path, "big.csv", data), settings=_settings(max_file_bytes=100))


def _zip_of(names: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in names.items():
            zf.writestr(name, content)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "employees.csv"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "employees.csv"),
        (b"GIF89a\x01\x00\x01\x00", "employees.xlsx"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "employees.csv"),
        (b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 32, "employees.csv"),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "employees.csv"),
        (_zip_of({"employees.csv": b"a,b\n1,2\n"}), "employees.csv"),
        (_zip_of({"employees.csv": b"a,b\n1,2\n"}), "employees.xlsx"),
    ],
)
def test_other_file_types_are_refused(data: bytes, name: str) -> None:
    with pytest.raises(UnsupportedFileTypeError) as err:
        read_bytes(data, name)
    assert "drop" in err.value.message.lower()


def test_a_header_starting_with_mz_is_still_csv() -> None:
    df, _ = read_bytes(b"MZ code,Name\nA1,Ann\n", "mz.csv")
    assert df.columns == ["MZ code", "Name"]


def test_zip_bomb_by_ratio_is_refused_before_inflating() -> None:
    bomb = _zip_of(
        {
            "[Content_Types].xml": b"<Types/>",
            "xl/workbook.xml": b"<workbook/>",
            "xl/worksheets/sheet1.xml": b"\x00" * (20 * 1024 * 1024),
        }
    )
    with pytest.raises(ZipBombError) as err:
        read_bytes(bomb, "bomb.xlsx")
    assert err.value.details["ratio"] > 200


def test_zip_bomb_by_total_size_uses_the_settings(tmp_path: Path) -> None:
    data = _xlsx(tmp_path).read_bytes()
    with pytest.raises(ZipBombError):
        read_bytes(data, "p.xlsx", settings=_settings(xlsx_max_uncompressed_bytes=1000))
    df, _ = read_bytes(data, "p.xlsx")  # the same workbook is fine under the defaults
    assert df.height == 3


def test_too_many_columns() -> None:
    header = ",".join(f"c{i}" for i in range(30))
    data = (header + "\n" + ",".join("1" for _ in range(30)) + "\n").encode()
    with pytest.raises(TooManyColumnsError) as err:
        read_bytes(data, "wide.csv", settings=_settings(max_columns=20))
    assert err.value.details["columns"] == 30
    df, _ = read_bytes(data, "wide.csv", settings=_settings(max_columns=30))
    assert df.width == 30


def test_too_many_columns_in_excel(tmp_path: Path) -> None:
    with pytest.raises(TooManyColumnsError):
        read_path(_xlsx(tmp_path), settings=_settings(max_columns=3))


def test_cell_too_large() -> None:
    data = b"id,note\n1,short\n2," + b"x" * 5000 + b"\n"
    with pytest.raises(CellTooLargeError) as err:
        read_bytes(data, "cells.csv", settings=_settings(max_cell_bytes=1000))
    assert err.value.details["column"] == "note"


@pytest.mark.parametrize("data", [b"", b"   \r\n\t\n  ", codecs.BOM_UTF8, codecs.BOM_UTF8 + b"\n\n"])
def test_empty_or_whitespace_files(data: bytes) -> None:
    with pytest.raises(EmptyFileError):
        read_bytes(data, "empty.csv")


def test_errors_are_snapmap_input_errors_with_codes() -> None:
    with pytest.raises(SnapMapError) as err:
        read_bytes(b"%PDF-1.4", "x.csv")
    assert err.value.code == "unsupported_file_type" and err.value.exit_code == 2
