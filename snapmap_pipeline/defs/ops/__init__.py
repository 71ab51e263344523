"""Operations: retention and run-failure alerts."""

import dagster as dg

from snapmap_pipeline.defs.ops.jobs import retention, retention_schedule
from snapmap_pipeline.defs.ops.sensors import run_failure_alert

defs = dg.Definitions(jobs=[retention], schedules=[retention_schedule], sensors=[run_failure_alert])
