"""Retention: a daily job purging artifacts and drop partitions older than each tenant's retention."""

import dagster as dg

from snapmap_pipeline.core.retention import purge
from snapmap_pipeline.defs.drops.partitions import drops_partitions
from snapmap_pipeline.defs.resources import ArtifactsResource


@dg.op(description="Purge stored drops, frames and daily feeds older than their tenant's retention.")
def purge_expired(context: dg.OpExecutionContext, artifacts: ArtifactsResource) -> dict:
    report = purge(artifacts.store())
    name = drops_partitions.name
    existing = set(context.instance.get_dynamic_partitions(name))
    dropped = 0
    for key in report.purged_drop_keys:  # one instance call per expired partition
        if key in existing:
            context.instance.delete_dynamic_partition(name, key)
            dropped += 1
    counts = {**report.to_dict(), "partitions_deleted": dropped}
    context.log.info(f"retention: {counts}")  # counts only, never names
    context.add_output_metadata(
        {
            "purged drops": report.purged["drop"],
            "purged daily": report.purged["daily"],
            "kept drops": report.kept["drop"],
            "partitions deleted": dropped,
        }
    )
    return counts


@dg.job(description="Purge artifacts and drop partitions past retention (default 30 days per tenant).")
def retention():
    purge_expired()


retention_schedule = dg.ScheduleDefinition(
    job=retention, cron_schedule="30 3 * * *", default_status=dg.DefaultScheduleStatus.RUNNING
)
