"""The daily feed: per tenant and entity, the day's snapshot (latest valid row per key) and the delta
against the day before, written as ingest / update / delete XML.
"""

import io
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from snapmap_pipeline.core.delta import diff_snapshots, latest_per_key
from snapmap_pipeline.core.schema import load_schema
from snapmap_pipeline.defs.daily.partitions import daily_feed_partitions, feed_key, split_feed
from snapmap_pipeline.defs.drops.common import as_failure
from snapmap_pipeline.defs.io_manager import _rel as frame_rel
from snapmap_pipeline.defs.resources import ArtifactsResource

GROUP = "daily"
DROP_COL = "_drop"
AT_COL = "_dropped_at"

# One partition per run: each day's delta needs the day before, and the backfill daemon orders runs
# by that dependency; a single multi-day run could not read a snapshot it has not written yet.
BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)

_PREVIOUS_DAY = dg.MultiPartitionMapping(
    {
        "date": dg.DimensionPartitionMapping(
            "date",
            dg.TimeWindowPartitionMapping(
                start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
            ),
        ),
        "feed": dg.DimensionPartitionMapping("feed", dg.IdentityPartitionMapping()),
    }
)


def _keys(context: dg.AssetExecutionContext) -> tuple[date, str, str, str]:
    keys = context.partition_key.keys_by_dimension  # type: ignore[union-attr]
    tenant, entity = split_feed(keys["feed"])
    return date.fromisoformat(keys["date"]), keys["feed"], tenant, entity


@dg.asset(
    partitions_def=daily_feed_partitions,
    group_name=GROUP,
    backfill_policy=BACKFILL,
    kinds={"polars"},
    # lineage only: the snapshot reads the delivered drops of its day from the artifacts index
    deps=[dg.AssetDep("delivery", partition_mapping=dg.AllPartitionMapping())],
)
def daily_snapshot(context: dg.AssetExecutionContext, artifacts: ArtifactsResource) -> pl.DataFrame:
    """The latest valid row per key from the feed's delivered drops of that day. A day without a drop
    repeats the last day that had one: no file means no news, never "everyone left"."""
    day, feed, _, entity = _keys(context)
    schema = load_schema(entity)
    store = artifacts.store()
    drops = [
        m
        for m in store.manifests()
        if m.get("status") == "delivered"
        and m.get("entity") == entity
        and m.get("tenant")
        and feed_key(m["tenant"], entity) == feed
        and datetime.fromisoformat(m["dropped_at"]).date() <= day
    ]
    days = sorted({datetime.fromisoformat(m["dropped_at"]).date() for m in drops})
    use = days[-1] if days else None
    frames = []
    for m in sorted(drops, key=lambda m: m["dropped_at"]):  # a handful of files per day
        if datetime.fromisoformat(m["dropped_at"]).date() != use:
            continue
        data = store.read_bytes(frame_rel(dg.AssetKey("validated_frame"), m["key"], "parquet"))
        frames.append(
            pl.read_parquet(io.BytesIO(data)).with_columns(
                pl.lit(m["key"]).alias(DROP_COL), pl.lit(m["dropped_at"]).alias(AT_COL)
            )
        )
    if frames:
        with as_failure():
            snap = latest_per_key(pl.concat(frames, how="diagonal_relaxed"), schema, order_by=[AT_COL])
    else:
        snap = pl.DataFrame(schema={schema.key: pl.String})
    context.add_output_metadata(
        {
            "rows": snap.height,
            "drops used": len(frames),
            "from day": str(use) if use else "",
            "carried forward": use is not None and use != day,
        }
    )
    return snap


@dg.asset(
    partitions_def=daily_feed_partitions,
    group_name=GROUP,
    backfill_policy=BACKFILL,
    kinds={"xml"},
    ins={"daily_snapshot": dg.AssetIn(partition_mapping=_PREVIOUS_DAY, metadata={"by_partition": True})},
)
def delta_feed(
    context: dg.AssetExecutionContext,
    daily_snapshot: dict[str, pl.DataFrame | None],
    artifacts: ArtifactsResource,
) -> dict[str, Any]:
    """Today's snapshot vs yesterday's: new keys → ingest XML, changed → update, gone → delete."""
    from snapmap_pipeline.core.export.xml import own_xsd, validate_xml, write_xml

    started = time.perf_counter()
    day, feed, _, entity = _keys(context)
    schema = load_schema(entity)
    today = context.partition_key
    previous = next((v for k, v in daily_snapshot.items() if k != today), None)
    current = daily_snapshot.get(today)
    if current is None:
        raise dg.Failure(f"no snapshot for {today}; materialise daily_snapshot for it first")
    delta = diff_snapshots(previous, current, schema)
    store = artifacts.store()
    rel = f"daily/{feed}/{day.isoformat()}"
    outputs: dict[str, Any] = {}
    with as_failure(), store.staging(rel) as out_dir:
        for op, frame in delta.frames().items():
            if frame.is_empty():
                continue
            path = out_dir / f"{entity}-{op}.xml"
            write_xml(frame, schema, op, path)
            errors = validate_xml(path, own_xsd(entity, op))
            if errors:
                raise dg.Failure(
                    f"{op} XML for {feed} is not valid against its XSD ({len(errors)} errors)",
                    metadata={"errors": len(errors)},
                )
            outputs[op] = {"rows": frame.height, "xml": store.uri(f"{rel}/{Path(path).name}")}
    counts = delta.counts()
    context.add_output_metadata(
        {
            **{f"{op} rows": n for op, n in counts.items()},
            **{f"{op} xml": dg.MetadataValue.path(o["xml"]) for op, o in outputs.items()},
            "previous snapshot": previous is not None,
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
    return {"date": day.isoformat(), "feed": feed, "counts": counts, "outputs": outputs}


assets = [daily_snapshot, delta_feed]
