"""A CSV file as record-aligned byte blocks, each parsed as the read of the file's prefix decided (the
streamed path, core/stream.py, takes a large file through the pipeline block by block). No Dagster
imports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from snapmap_pipeline.core.pipeline import ROW
from snapmap_pipeline.errors import InputError

PREFIX_BYTES = 4 * 1024 * 1024  # header, delimiter, profiles, entity and mapping come from this much


def record_end(buf: bytes) -> int:
    """Length of the longest head of `buf` that ends at a record boundary: after a newline outside
    quotes (an even number of `"` before it; `buf` starts at a boundary). 0 when there is none."""
    pos = buf.rfind(b"\n")
    if pos < 0:
        return 0
    quotes = buf.count(b'"', 0, pos)
    while pos >= 0:
        if quotes % 2 == 0:
            return pos + 1
        prev = buf.rfind(b"\n", 0, pos)
        if prev < 0:
            return 0
        quotes -= buf.count(b'"', prev, pos)
        pos = prev
    return 0


def blocks(path: Path, block_bytes: int) -> Iterator[bytes]:
    """The file as consecutive byte blocks of about `block_bytes`, each ending at a record boundary.

    A block grows when no boundary is found in it (a quoted cell holding newlines, or a stray quote).
    """
    carry = b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(block_bytes)
            if not chunk:
                if carry:
                    yield carry
                return
            buf = carry + chunk if carry else chunk
            cut = record_end(buf)
            if cut == 0:
                carry = buf
                continue
            yield buf[:cut]
            carry = buf[cut:]


@dataclass
class Layout:
    """How every block is parsed: what the read of the file's prefix decided."""

    delimiter: str
    header_row: int
    names: list[str]


def parse_block(
    buf: bytes, layout: Layout, first: bool, filename: str, *, columns: list[int] | None = None
) -> pl.DataFrame:
    """One block as an all-string frame named like the prefix read (same polars options as read.py);
    only the `columns` positions when given (polars then skips the other cells' values)."""
    schema = {f"c{i}": pl.String for i in range(len(layout.names))}
    try:
        df = pl.read_csv(
            buf,
            has_header=False,
            separator=layout.delimiter,
            skip_rows=layout.header_row if first else 0,
            schema=schema,
            null_values=[""],
            quote_char='"',
            missing_columns="insert",
            columns=columns,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError) as exc:
        text = str(exc).lower()
        if "more fields" in text or "not specified in schema" in text:
            raise InputError(
                f"'{filename}' has rows with more cells than its header past its first "
                f"{PREFIX_BYTES // (1024 * 1024)} MB, which a streamed file cannot widen. Fix the export "
                "(a missing quote around a cell with the delimiter is the usual cause).",
                code="ragged_rows",
                file=filename,
            ) from exc
        raise
    df.columns = layout.names if columns is None else [layout.names[i] for i in columns]
    return df.slice(1) if first else df


def number_rows(df: pl.DataFrame, first_row: int) -> tuple[pl.DataFrame, int]:
    """`_row` as read_step numbers it, then blank lines dropped: (frame, blank lines)."""
    df = df.with_row_index(ROW, offset=first_row).with_columns(pl.col(ROW).cast(pl.Int64))
    if df.width <= 1 or df.height == 0:
        return df, 0
    blank = pl.all_horizontal(pl.exclude(ROW).is_null())
    blanks = int(df.select(blank.sum()).item())
    return (df.filter(~blank) if blanks else df), blanks
