"""The Dagster shell: the areas (drops, daily, ops) merged with the resources of `settings.env`.
No domain logic here; asset bodies call `snapmap_pipeline.core`."""

import warnings

import dagster as dg

# We use the partition mappings and backfill policy Dagster marks beta, on purpose (see daily/);
# the warning on every load would only hide the warnings that matter.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from snapmap_pipeline.defs import daily, drops, ops  # noqa: E402
from snapmap_pipeline.defs.resources import resources_for  # noqa: E402
from snapmap_pipeline.settings import get_settings  # noqa: E402


def build_defs() -> dg.Definitions:
    """Definitions for the current settings (tests call it again after changing the environment)."""
    settings = get_settings()
    return dg.Definitions.merge(
        drops.defs, daily.defs, ops.defs, dg.Definitions(resources=resources_for(settings.env, settings))
    )


defs = build_defs()
