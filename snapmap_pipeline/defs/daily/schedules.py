"""The nightly run of the daily feed, built from its partitioned job."""

from __future__ import annotations

import dagster as dg

from snapmap_pipeline.defs.daily.assets import daily_snapshot, delta_feed
from snapmap_pipeline.defs.daily.partitions import daily_feed_partitions

daily_feed = dg.define_asset_job(
    "daily_feed",
    selection=dg.AssetSelection.assets(daily_snapshot, delta_feed),
    partitions_def=daily_feed_partitions,
    description="Each tenant's entity: the day's snapshot and its ingest/update/delete delta.",
)

# Fires after midnight for the day just ended, once per feed.
daily_feed_schedule = dg.build_schedule_from_partitioned_job(
    daily_feed, hour_of_day=2, minute_of_hour=0, default_status=dg.DefaultScheduleStatus.RUNNING
)
