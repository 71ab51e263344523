"""The mapping engine: which Eightfold field each source column goes to, with how sure and why.

Public surface: `map_columns`, `Mapping`, `ColumnMapping`, `MappingMemory`, `TenantOverrides`,
`load_overrides`, `set_override`. No Dagster imports anywhere in this package.
"""

from snapmap_pipeline.core.mapping.engine import METHOD_NAMES, ColumnMapping, Mapping, map_columns
from snapmap_pipeline.core.mapping.memory import MappingMemory, fingerprint
from snapmap_pipeline.core.mapping.overrides import (
    TenantOverrides,
    custom_name,
    load_overrides,
    set_override,
)

__all__ = [
    "METHOD_NAMES",
    "ColumnMapping",
    "Mapping",
    "MappingMemory",
    "TenantOverrides",
    "custom_name",
    "fingerprint",
    "load_overrides",
    "map_columns",
    "set_override",
]
