"""Snapshot vs previous snapshot → the ingest / update / delete feeds Eightfold wants. No Dagster imports.

New keys are ingested, keys whose exported values changed are updated, keys that vanished are deleted
(leavers). Derived fields (`derive: drop_time`) change with every drop, so they never count as a change.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from snapmap_pipeline.core.schema import EntitySchema
from snapmap_pipeline.errors import InputError

_PREV = "__prev"


@dataclass(frozen=True)
class Delta:
    """The three feeds of one day. Each frame has Eightfold field names and string values."""

    ingest: pl.DataFrame
    update: pl.DataFrame
    delete: pl.DataFrame

    def counts(self) -> dict[str, int]:
        return {"ingest": self.ingest.height, "update": self.update.height, "delete": self.delete.height}

    def frames(self) -> dict[str, pl.DataFrame]:
        return {"ingest": self.ingest, "update": self.update, "delete": self.delete}


def _data_columns(df: pl.DataFrame) -> list[str]:
    """Exportable columns: `_row` and other `_`-prefixed bookkeeping columns are not data."""
    return [c for c in df.columns if not c.startswith("_")]


def latest_per_key(
    frame: pl.DataFrame, schema: EntitySchema, order_by: list[str] | None = None
) -> pl.DataFrame:
    """One row per key: the last one in `order_by` order (or frame order). Null keys cannot be fed."""
    key = schema.key
    if key not in frame.columns:
        raise InputError(
            f"snapshot has no {key} column; map a column to {key} for entity {schema.entity}",
            code="snapshot_without_key",
            entity=schema.entity,
        )
    ordered = frame.sort(order_by, maintain_order=True) if order_by else frame
    return ordered.filter(pl.col(key).is_not_null()).unique(key, keep="last", maintain_order=True)


def diff_snapshots(previous: pl.DataFrame | None, current: pl.DataFrame, schema: EntitySchema) -> Delta:
    """Compare two full snapshots of one tenant's entity.

    >>> # previous {1: Ann}, current {1: Anne, 2: Bob} → ingest [2], update [1], delete []
    """
    key = schema.key
    cur = latest_per_key(current, schema).select(_data_columns(current))
    if previous is None or previous.is_empty():
        prev = cur.clear()
    else:
        prev = latest_per_key(previous, schema).select(_data_columns(previous))
    derived = {f.name for f in schema.fields if f.derive is not None}

    ingest = cur.join(prev.select(key), on=key, how="anti", maintain_order="left")
    gone = prev.join(cur.select(key), on=key, how="anti", maintain_order="left")

    shared = [c for c in cur.columns if c != key and c not in derived and c in prev.columns]
    added = [c for c in cur.columns if c != key and c not in derived and c not in prev.columns]
    both = cur.join(
        prev.select(key, *[pl.col(c).alias(c + _PREV) for c in shared]),
        on=key,
        how="inner",
        maintain_order="left",
    )
    changed = [pl.col(c).ne_missing(pl.col(c + _PREV)) for c in shared]
    changed += [pl.col(c).is_not_null() for c in added]  # a column that appeared with a value is news
    update = both.filter(pl.any_horizontal(changed)) if changed else both.clear()
    update = update.select(cur.columns)

    delete_fields = [f.name for f in schema.fields_for("delete")]
    delete = gone.select([c for c in gone.columns if c in delete_fields])
    return Delta(ingest=ingest, update=update, delete=delete)
