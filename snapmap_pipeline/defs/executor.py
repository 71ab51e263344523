"""The executor of the project's jobs: one process per step by default, or every step in the run's own
process when the run asks for it (`execution: config: in_process:`), which the drop sensor does for small
files. No domain logic here; the size threshold is a deployment knob.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from snapmap_pipeline.settings import Settings

# Each step is a process; forkserver forks it from a server that imported the pipeline once per run,
# instead of spawn's fresh interpreter per step re-importing dagster, polars and the pipeline.
PRELOAD = ["snapmap_pipeline.defs"]
FORKSERVER = {"forkserver": {"preload_modules": PRELOAD}}

# A 50-row file's run spent ~9 of its ~22 s (unloaded; far more under load) starting 8 step processes,
# each paying the lazy imports (pandera, lancedb, GX) again; the work itself is milliseconds. Below this
# size one process runs every step: same steps, checks, pools and retries. Above it the quality suite
# running beside the export on another core, and a fresh process per step, are worth their start
# (settings.in_process_below_bytes, 16 MiB by default).
IN_PROCESS_RUN_CONFIG: dict[str, Any] = {"execution": {"config": {"in_process": {}}}}


def _with_forkserver(config: dict[str, Any]) -> dict[str, Any]:
    """The run's choice as given; a multiprocess run without a start method gets the preloaded forkserver."""
    if "multiprocess" not in config:
        return config
    multiprocess = dict(config["multiprocess"] or {})
    multiprocess.setdefault("start_method", FORKSERVER)
    return {"multiprocess": multiprocess}


snapmap_executor = dg.multi_or_in_process_executor.configured(
    _with_forkserver,
    name="snapmap_executor",
    config_schema=dg.multi_or_in_process_executor.config_schema,
    description="One process per step (forkserver, the pipeline preloaded) unless the run config says "
    "`in_process`: the drop sensor's choice for small files.",
)


def in_process_below_bytes() -> int:
    """The size under which a drop runs in one process; `SNAPMAP_IN_PROCESS_BELOW_BYTES` (0: never)."""
    return Settings().in_process_below_bytes  # read now: the sensor sees a changed environment


def run_config_for_size(executor_def: dg.ExecutorDefinition | None, size: int) -> dict[str, Any]:
    """`in_process` run config for a file below the threshold, when the job runs on `snapmap_executor`
    (a deployment that chose another executor keeps it: its config has no such choice)."""
    if executor_def is None or executor_def.name != snapmap_executor.name:
        return {}
    return IN_PROCESS_RUN_CONFIG if size < in_process_below_bytes() else {}
