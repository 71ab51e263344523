"""One dynamic partition per dropped file, and the run tags that say where it came from."""

from __future__ import annotations

import dagster as dg

drops_partitions = dg.DynamicPartitionsDefinition(name="drops")

# Run tags a drop run carries; the partition key alone is short and UI-safe, these say the rest.
TAG_SOURCE = "snapmap/source"
TAG_PATH = "snapmap/path"
TAG_TENANT = "snapmap/tenant"
TAG_HASH = "snapmap/hash"
TAG_DROPPED_AT = "snapmap/dropped_at"
TAG_EXECUTOR = "snapmap/executor"  # "in_process" when the sensor chose one process for a small file
