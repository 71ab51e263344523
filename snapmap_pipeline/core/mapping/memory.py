"""Mapping memory: confirmed mappings per tenant and source-system fingerprint, in LanceDB under the
artifacts root (local path or s3://). Append-only (one row per confirmation), so concurrent writers
never overwrite each other; counts are summed on read. No Dagster imports.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from rapidfuzz import fuzz, process

from snapmap_pipeline.core.mapping.normalize import normalize
from snapmap_pipeline.core.mapping.semantic import DIM, _connect, embed
from snapmap_pipeline.errors import ConfigError
from snapmap_pipeline.logs import get_logger

if TYPE_CHECKING:
    from snapmap_pipeline.core.mapping.engine import Mapping

log = get_logger(__name__)

TABLE = "mapping_memory"
SAME_TENANT = 1.0
SAME_TENANT_OTHER_SOURCE = 0.97
NEAR_MIN_RATIO = 90.0
OTHER_TENANT = 0.7
_RETRIES = 12


def fingerprint(headers: list[str]) -> str:
    """The source-system fingerprint: a hash of the sorted normalised headers."""
    import hashlib

    norm = sorted({normalize(h) for h in headers})
    return hashlib.sha256("\x1f".join(norm).encode()).hexdigest()[:16]


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("header", pa.string()),
            pa.field("norm_header", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), DIM)),
            pa.field("target", pa.string()),
            pa.field("entity", pa.string()),
            pa.field("tenant", pa.string()),
            pa.field("fingerprint", pa.string()),
            pa.field("confirmed_by", pa.string()),
            pa.field("count", pa.int32()),
            pa.field("time", pa.timestamp("us", tz="UTC")),
        ]
    )


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class MappingMemory:
    """Confirmed mappings in LanceDB. `remember` after a person accepts; `lookup` before mapping.

    >>> mem = MappingMemory(settings.lancedb_path)   # doctest: +SKIP
    >>> mem.remember(mapping, tenant="acme", confirmed_by="cli:accept")   # doctest: +SKIP
    """

    def __init__(self, uri: str, *, vectors: bool = True) -> None:
        """`vectors=False` stores zero vectors instead of embedding the headers (no model load): for
        bulk or scripted writes where only exact and near-identical lookups matter."""
        self.uri = uri
        self.vectors = vectors

    # -- storage ---------------------------------------------------------------------------------
    def _table(self, create: bool) -> Any | None:
        db = _connect(self.uri)
        if TABLE in db.list_tables().tables:
            return db.open_table(TABLE)
        if not create:
            return None
        return db.create_table(TABLE, schema=_schema(), exist_ok=True)

    def _with_retry(self, action: str, fn: Any) -> Any:
        delay = 0.02
        for attempt in range(_RETRIES):
            try:
                return fn()
            except (OSError, RuntimeError, ValueError) as exc:
                # commit conflicts between concurrent writers surface as these; back off and retry
                if attempt == _RETRIES - 1:
                    raise ConfigError(
                        f"mapping memory at {self.uri} could not {action}: {exc}; check the store is "
                        f"reachable and writable, then retry",
                        code="memory_unavailable",
                    ) from exc
                time.sleep(delay + random.random() * delay)
                delay = min(delay * 2, 1.0)
        return None

    # -- write -----------------------------------------------------------------------------------
    def remember(self, mapping: Mapping, *, tenant: str, confirmed_by: str) -> int:
        """Store every mapped column of a reviewed mapping for this tenant; returns rows written."""
        import pyarrow as pa

        items = [i for i in mapping.items if i.target]
        if not items:
            return 0
        headers = [i.source for i in items]
        vecs = embed(headers) if self.vectors else None
        if vecs is None:
            vecs = np.zeros((len(headers), DIM), dtype=np.float32)
        now = datetime.now(UTC)
        data = pa.table(
            {
                "header": headers,
                "norm_header": [normalize(h) for h in headers],
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1), pa.float32()), DIM),
                "target": [i.target for i in items],
                "entity": [mapping.entity] * len(items),
                "tenant": [tenant] * len(items),
                "fingerprint": [mapping.fingerprint] * len(items),
                "confirmed_by": [confirmed_by] * len(items),
                "count": pa.array([1] * len(items), pa.int32()),
                "time": pa.array([now] * len(items), pa.timestamp("us", tz="UTC")),
            },
            schema=_schema(),
        )

        def _add() -> None:
            table = self._table(create=True)
            table.add(data)

        self._with_retry("store the mapping", _add)
        log.info("mapping remembered", extra={"fields": {"tenant": tenant, "columns": len(items)}})
        return len(items)

    # -- read ------------------------------------------------------------------------------------
    def rows(self, entity: str) -> list[dict[str, Any]]:
        """All confirmations for an entity (every tenant)."""

        def _read() -> list[dict[str, Any]]:
            table = self._table(create=False)
            if table is None:
                return []
            n = table.count_rows()
            if n == 0:
                return []
            cols = ["norm_header", "target", "tenant", "fingerprint", "count", "time"]
            arrow = table.search().where(f"entity = {_quote(entity)}").select(cols).limit(n).to_arrow()
            return arrow.to_pylist()

        return self._with_retry("read", _read)

    def lookup(
        self, headers: list[str], entity: str, tenant: str | None, fingerprint_: str | None = None
    ) -> dict[str, tuple[str, float, str]]:
        """header → (target, score, 'memory'): the same tenant's exact header first, then its
        near-identical headers, then other tenants' exact headers as a weaker signal."""
        rows = self.rows(entity)
        if not rows:
            return {}
        fp = fingerprint_ or fingerprint(headers)
        mine: dict[str, dict[str, list[float]]] = {}
        others: dict[str, dict[str, set[str]]] = {}
        for r in rows:  # confirmations, not data rows: one per reviewed column
            if tenant is not None and r["tenant"] == tenant:
                slot = mine.setdefault(r["norm_header"], {}).setdefault(r["target"], [0, 0, 0])
                slot[0] += r["count"] or 1
                slot[1] = max(slot[1], r["time"].timestamp() if r["time"] else 0)
                slot[2] = max(slot[2], 1 if r["fingerprint"] == fp else 0)
            else:
                others.setdefault(r["norm_header"], {}).setdefault(r["target"], set()).add(r["tenant"])
        out: dict[str, tuple[str, float, str]] = {}
        known = list(mine)
        for h in headers:
            norm = normalize(h)
            if norm in mine:
                target, (count, _, same_fp) = max(mine[norm].items(), key=lambda kv: (kv[1][1], kv[1][0]))
                out[h] = (target, SAME_TENANT if same_fp else SAME_TENANT_OTHER_SOURCE, "memory")
                continue
            if known:
                best = process.extractOne(norm, known, scorer=fuzz.ratio, score_cutoff=NEAR_MIN_RATIO)
                if best is not None:
                    target, _ = max(mine[best[0]].items(), key=lambda kv: (kv[1][1], kv[1][0]))
                    out[h] = (target, 0.9 * best[1] / 100.0, "memory")
                    continue
            if norm in others:
                target, tenants = max(others[norm].items(), key=lambda kv: len(kv[1]))
                out[h] = (target, min(OTHER_TENANT + 0.03 * (len(tenants) - 1), 0.8), "memory")
        return out
