"""core/blocks.py: a CSV file cut into record-aligned byte blocks, each parsed with the prefix's layout
(and read.py's cell-size guard, which every block passes)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from snapmap_pipeline.core.blocks import Layout, blocks, number_rows, parse_block, record_end
from snapmap_pipeline.core.read import check_cells
from snapmap_pipeline.errors import CellTooLargeError, InputError
from snapmap_pipeline.settings import Settings


def test_record_end_skips_newlines_inside_quotes() -> None:
    assert record_end(b'a,b\nc,"d\ne') == 4  # the second newline is inside an open quote
    assert record_end(b'a,"x\ny"\nz') == 8
    assert record_end(b'a,"open\nstill open') == 0
    assert record_end(b"no newline") == 0


def test_blocks_end_at_records_and_rejoin_to_the_file(tmp_path: Path) -> None:
    rows = [f'E{i},"line one\nline two",{i}' for i in range(200)]
    src = tmp_path / "quoted.csv"
    src.write_bytes(("id,note,n\n" + "\n".join(rows) + "\n").encode())

    parts = list(blocks(src, 40))  # about one record: a block ending inside quotes grows to a boundary

    assert b"".join(parts) == src.read_bytes()
    assert len(parts) > 50
    assert all(record_end(p) == len(p) for p in parts)


def test_a_block_parses_with_the_layout_and_numbers_rows_like_the_whole_read(tmp_path: Path) -> None:
    layout = Layout(delimiter=";", header_row=0, names=["id", "name"])
    first = parse_block(b"id;name\nE1;Ann\n;\nE2;Bob\n", layout, True, "x.csv")
    rest = parse_block(b"E3;Cy\n", layout, False, "x.csv", columns=[1])

    numbered, blanks = number_rows(first, 2)

    assert first.columns == ["id", "name"] and first.height == 3
    assert rest.columns == ["name"] and rest["name"].to_list() == ["Cy"]
    assert blanks == 1
    assert numbered["_row"].to_list() == [2, 4]  # the blank line keeps its number, then is dropped


def test_a_row_wider_than_the_header_and_an_oversize_cell_are_refused() -> None:
    layout = Layout(delimiter=",", header_row=0, names=["id", "name"])
    with pytest.raises(InputError) as wide:
        parse_block(b"E1,Ann,surplus\n", layout, False, "x.csv")
    assert wide.value.code == "ragged_rows"

    frame = pl.DataFrame({"_row": [2], "name": ["x" * 50]})
    with pytest.raises(CellTooLargeError):
        check_cells(frame, "x.csv", Settings(max_cell_bytes=10))
    check_cells(frame, "x.csv", Settings(max_cell_bytes=100))  # under the limit: nothing raised
