"""Per-file processing: one dynamic partition per dropped file."""

import dagster as dg

from snapmap_pipeline.defs.drops.assets import assets
from snapmap_pipeline.defs.drops.checks import checks
from snapmap_pipeline.defs.drops.sensors import process_drop, sensors

defs = dg.Definitions(assets=assets, asset_checks=checks, sensors=sensors, jobs=[process_drop])
