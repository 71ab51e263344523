"""Small shell helpers shared by the drop assets and checks: turning SnapMap errors into Dagster
failures a person can act on, masked previews and mapping tables. No domain logic here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl

from snapmap_pipeline.errors import SnapMapError

PREVIEW_ROWS = 5


@contextlib.contextmanager
def as_failure() -> Iterator[None]:
    """A SnapMapError becomes a `dg.Failure` with its code and what to do, not a traceback.

    Input and review errors are not retried: the same bytes fail the same way.
    """
    try:
        yield
    except SnapMapError as exc:
        raise dg.Failure(
            description=f"[{exc.code}] {exc.message}",
            metadata={"code": exc.code, "details": dg.MetadataValue.json(_jsonable(exc.details))},
            allow_retries=exc.code.startswith(("source_", "transfer_")),
        ) from exc


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def masked_preview(df: pl.DataFrame, *, show_values: bool, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    """The first rows as markdown; cell values masked (length kept as `•`) unless previews are on."""
    head = df.head(rows)
    if not show_values:
        head = head.with_columns(
            pl.when(pl.col(c).is_null())
            .then(pl.lit(""))
            .otherwise(pl.col(c).cast(pl.String).str.replace_all(r"[^\s]", "•").str.slice(0, 12))
            .alias(c)
            for c in head.columns
            if not c.startswith("_")
        )
    return dg.MetadataValue.md(frame_markdown(head))


def frame_markdown(df: pl.DataFrame) -> str:
    cols = df.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.iter_rows():  # at most a few preview rows
        lines.append("| " + " | ".join("" if v is None else str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def mapping_rows(mapping: Any) -> list[dict[str, Any]]:
    """[{source, target, confidence, method}] from a core Mapping."""
    return list(mapping.to_dict().get("mappings", []))


def mapping_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| source | target | confidence | method |", "|---|---|---|---|"]
    for r in rows:
        conf = r.get("confidence")
        lines.append(
            f"| {r.get('source')} | {r.get('target') or '—'} | "
            f"{'' if conf is None else f'{conf:.2f}'} | {r.get('method') or ''} |"
        )
    return "\n".join(lines)
