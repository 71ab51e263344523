"""The Dagster shell: the areas (drops, daily, ops) merged with the resources of `settings.env`.
No domain logic here; asset bodies call `snapmap_pipeline.core`."""

import warnings

import dagster as dg

# We use the partition mappings and backfill policy Dagster marks beta, and per-partition asset checks
# it marks preview, on purpose (see daily/ and drops/checks.py); the warning on every load would only
# hide the warnings that matter.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from snapmap_pipeline.defs import daily, drops, ops  # noqa: E402
from snapmap_pipeline.defs.executor import snapmap_executor  # noqa: E402
from snapmap_pipeline.defs.resources import resources_for  # noqa: E402
from snapmap_pipeline.settings import get_settings  # noqa: E402

# One process per step (forkserver, the pipeline preloaded) unless a run asks for `in_process`: the
# drop sensor does for small files (defs/executor.py).
EXECUTOR = snapmap_executor


def build_defs(executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """Definitions for the current settings (tests call it again after changing the environment);
    a deployment may choose another `executor` (the benchmarks compare them)."""
    settings = get_settings()
    return dg.Definitions.merge(
        drops.defs,
        daily.defs,
        ops.defs,
        dg.Definitions(resources=resources_for(settings.env, settings), executor=executor or EXECUTOR),
    )


defs = build_defs()
