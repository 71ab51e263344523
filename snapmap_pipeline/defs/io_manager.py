"""The IO manager: frames as parquet (other small values pickled) under `<artifacts root>/frames/`, so
runs on different machines share them. Works on a local folder and on s3:// (bytes through the store).
"""

import pickle
from typing import Any

import dagster as dg
import polars as pl

from snapmap_pipeline.errors import SnapMapError


class MissingArtifactError(SnapMapError):
    code = "artifact_missing"


def _rel(asset_key: dg.AssetKey, partition_key: str | None, ext: str) -> str:
    """frames/<asset path>/<partition>.<ext>; a multi-partition key `a|b` becomes the folders a/b."""
    base = "frames/" + "/".join(asset_key.path)
    if partition_key is None:
        return f"{base}/_.{ext}"
    return f"{base}/{partition_key.replace('|', '/')}.{ext}"


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores `pl.DataFrame` as parquet; anything else (a mapping, a dict) as a pickle.

    An input whose metadata says `{"optional": True}` loads as None when the upstream partition does
    not exist or was never materialised (the day before the first snapshot).
    """

    artifacts: dg.ResourceDependency[Any]

    def _store(self):
        return self.artifacts.store()

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if not context.has_asset_key:
            return  # a plain op's result (the retention job's counts) is bookkeeping: its metadata has it
        key = context.asset_partition_key if context.has_asset_partitions else None
        if isinstance(obj, pl.DataFrame):
            store, rel = self._store(), _rel(context.asset_key, key, "parquet")
            # Written to a file, not to bytes first: a large frame is never held twice.
            with store.receive(rel) as dest:
                obj.write_parquet(dest)
            context.add_output_metadata({"stored_at": dg.MetadataValue.path(store.uri(rel))})
        else:
            self._store().write_bytes(_rel(context.asset_key, key, "pkl"), pickle.dumps(obj))

    def _load(self, asset_key: dg.AssetKey, partition_key: str | None) -> tuple[bool, Any]:
        """(stored?, value); a stored None (a skipped CSV) is found and loads as None."""
        store = self._store()
        for ext in ("parquet", "pkl"):
            rel = _rel(asset_key, partition_key, ext)
            if store.exists(rel):
                if ext == "parquet":
                    with store.local_copy(rel) as path:
                        return True, pl.read_parquet(path, memory_map=False)
                return True, pickle.loads(store.read_bytes(rel))
        return False, None

    def load_input(self, context: dg.InputContext) -> Any:
        meta = context.metadata or {}
        optional = bool(meta.get("optional"))
        keys: list[str | None] = [None]
        if context.has_asset_partitions:
            try:
                keys = list(context.asset_partition_keys)
            except dg.DagsterInvariantViolationError:
                keys = []
        if meta.get("by_partition"):  # {partition key: value or None (never materialised)}
            return {str(k): self._load(context.asset_key, k)[1] for k in keys}
        if len(keys) > 1 and context.has_partition_key and context.partition_key in keys:
            # an asset check is not partitioned itself: it sees every partition of its asset, but
            # checks the one its run materialised
            keys = [context.partition_key]
        if len(keys) != 1:
            if optional:
                return None
            raise MissingArtifactError(
                f"{context.asset_key.to_user_string()}: expected one upstream partition, got {len(keys)}"
            )
        found, value = self._load(context.asset_key, keys[0])
        if found or optional:
            return value
        raise MissingArtifactError(
            f"{context.asset_key.to_user_string()} partition {keys[0]} is not stored; materialise it first "
            f"(re-execute the whole partition)",
            asset=context.asset_key.to_user_string(),
        )
