"""Drop sensors, one per source kind, all on the connectors' `DropSource` interface.

A tick lists one bounded page after the saved cursor, takes only stable files, hashes them, adds their
partitions and requests one run each with `run_key` = content hash. The same bytes, under any name or
from any source, never run twice. A file named like a companion sheet (ROLE-ASSOCIATED-TAGS.csv, ...) gets
no run of its own: the MAIN file of its folder picks it up (raw_upload).
"""

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from snapmap_pipeline.core.companion import is_companion_file
from snapmap_pipeline.core.pipeline import drop_partition_key, tenant_from_name
from snapmap_pipeline.defs.drops.assets import assets as drop_assets
from snapmap_pipeline.defs.drops.partitions import (
    TAG_DROPPED_AT,
    TAG_EXECUTOR,
    TAG_HASH,
    TAG_PATH,
    TAG_SOURCE,
    TAG_TENANT,
    drops_partitions,
)
from snapmap_pipeline.defs.executor import run_config_for_size
from snapmap_pipeline.defs.resources import DropSourcesResource
from snapmap_pipeline.errors import SnapMapError
from snapmap_pipeline.logs import get_logger

log = get_logger(__name__)

PAGE_LIMIT = 200  # names listed per tick; a tick takes at most about twice this (two looks)
# A file is taken on its second look (unchanged size and mtime), so a drop waits one to two intervals
# before its run is requested; 30 s made that most of a small file's latency.
SENSOR_INTERVAL_S = 15

process_drop = dg.define_asset_job(
    "process_drop",
    selection=dg.AssetSelection.assets(*drop_assets),
    partitions_def=drops_partitions,
    description="One dropped file from bytes to delivered Eightfold feeds.",
)


def already_ran(instance: dg.DagsterInstance, digests: list[str]) -> set[str]:
    """The hashes among `digests` that a run exists for (from any sensor, under any name): one query."""
    if not digests:
        return set()
    records = instance.get_run_records(dg.RunsFilter(tags={TAG_HASH: digests}))
    return {r.dagster_run.tags.get(TAG_HASH) for r in records}


def _job_executor(context: dg.SensorEvaluationContext) -> dg.ExecutorDefinition | None:
    """The executor `process_drop` runs on in this code location (None outside one, e.g. a bare test)."""
    repo = context.repository_def
    return None if repo is None else repo.get_job(process_drop.name).executor_def


def drop_tick(
    context: dg.SensorEvaluationContext, source: Any, kind: str, limit: int = PAGE_LIMIT
) -> dg.SensorResult:
    """One tick over `source`: the sensor body, separate so tests and `make run` can call it."""
    from snapmap_pipeline.connectors.base import poll

    state = json.loads(context.cursor) if context.cursor else {}
    tick = poll(source, state, limit=limit)
    requests, keys, seen = [], [], set()
    hashed = []
    companions = 0
    # Each file is streamed through a scratch file to hash its bytes: memory stays flat for a large drop.
    with tempfile.TemporaryDirectory(prefix="snapmap-tick-") as scratch:
        for f in tick.ready:  # bounded by the page size
            if is_companion_file(f.name):
                companions += 1  # attached to the MAIN file of its folder, not a drop of its own
                continue
            dest = Path(scratch) / "drop"
            try:
                digest = source.fetch_to(f, dest)
                hashed.append((f, digest, dest.stat().st_size))
            except SnapMapError as exc:
                log.warning(
                    "drop not fetched; retried next time it changes", extra={"fields": {"code": exc.code}}
                )
            finally:
                dest.unlink(missing_ok=True)
    ran = already_ran(context.instance, [d for _, d, _ in hashed])
    executor = _job_executor(context) if hashed else None
    for f, digest, size in hashed:
        if digest in seen or digest in ran:
            continue
        seen.add(digest)
        key = drop_partition_key(f.name, digest)
        keys.append(key)
        dropped = datetime.fromtimestamp(f.mtime, UTC) if f.mtime else datetime.now(UTC)
        tags = {
            TAG_SOURCE: kind,
            TAG_PATH: f.name,
            TAG_TENANT: tenant_from_name(f.name) or "",
            TAG_HASH: digest,
            TAG_DROPPED_AT: dropped.isoformat(),
        }
        # a small file's steps all run in the run's own process: its run is mostly process starts else
        run_config = run_config_for_size(executor, size)
        if run_config:
            tags[TAG_EXECUTOR] = "in_process"
        requests.append(dg.RunRequest(run_key=digest, partition_key=key, tags=tags, run_config=run_config))
    log.info(
        "drop tick",
        extra={
            "fields": {
                "source": kind,
                "ready": len(tick.ready),
                "runs": len(requests),
                "companions": companions,
            }
        },
    )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[drops_partitions.build_add_request(keys)] if keys else [],
        cursor=json.dumps(tick.state),
    )


def make_drop_sensor(kind: str, default: dg.DefaultSensorStatus) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{kind}_drop_sensor",
        job=process_drop,
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=default,
        description=f"Starts one run per stable file dropped on the {kind} source.",
    )
    def _sensor(context: dg.SensorEvaluationContext, drop_sources: DropSourcesResource):
        if not drop_sources.configured(kind):
            return dg.SkipReason(f"the {kind} drop source is not configured")
        with drop_sources.source(kind) as source:  # closes the SFTP session at the end of the tick
            return drop_tick(context, source, kind)

    return _sensor


local_drop_sensor = make_drop_sensor("local", dg.DefaultSensorStatus.RUNNING)
sftp_drop_sensor = make_drop_sensor("sftp", dg.DefaultSensorStatus.STOPPED)
s3_drop_sensor = make_drop_sensor("s3", dg.DefaultSensorStatus.STOPPED)

sensors = [local_drop_sensor, sftp_drop_sensor, s3_drop_sensor]
