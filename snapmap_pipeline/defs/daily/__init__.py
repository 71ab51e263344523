"""The daily delta feed: snapshots per tenant and entity, diffed day over day."""

import dagster as dg

from snapmap_pipeline.defs.daily.assets import assets
from snapmap_pipeline.defs.daily.schedules import daily_feed, daily_feed_schedule

defs = dg.Definitions(assets=assets, jobs=[daily_feed], schedules=[daily_feed_schedule])
