"""map_columns: overrides, memory, lexical + semantic + value signals, then one assignment over the file.

The result is a `Mapping`: one `ColumnMapping` per source column, with the method that decided and the
runners-up, plus `review_reasons` that say why it must not be exported on a guess. No Dagster imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from snapmap_pipeline.core.mapping.assign import NON_EXACT_CAP, assign, combine
from snapmap_pipeline.core.mapping.evidence import field_kind, value_factors, value_floor
from snapmap_pipeline.core.mapping.memory import MappingMemory, fingerprint
from snapmap_pipeline.core.mapping.overrides import load_overrides
from snapmap_pipeline.core.mapping.semantic import calibrate, semantic_and_sink
from snapmap_pipeline.core.mapping.signals import (
    METHODS,
    boolean_factors,
    coverage_factors,
    head_factors,
    id_name_factors,
    lexical_index,
    lexical_scores,
    noise_reads,
    person_factors,
    plural_key_factors,
    qualifier_factors,
    semantic_text,
)
from snapmap_pipeline.core.schema import EntitySchema, custom_field
from snapmap_pipeline.errors import ConfigError
from snapmap_pipeline.logs import get_logger
from snapmap_pipeline.settings import Settings, get_settings

if TYPE_CHECKING:
    from snapmap_pipeline.core.profile import ColumnProfile

log = get_logger(__name__)

METHOD_NAMES = (
    "exact",
    "alias",
    "glossary",
    "fuzzy",
    "semantic",
    "value",
    "memory",
    "override",
    "ignored",
    "custom",
    "none",
)
TRUSTED = {"override", "memory", "custom"}
SEMANTIC_SKIP = 0.9  # a header this sure lexically needs no embedding
AMBIGUITY_MARGIN = 0.08
# Confidence is what a decision is worth on headers never seen, measured per deciding method over every
# labelled split (bench/bench_mapping.py, round 7). The embedding model decides well when its field is
# far ahead (gap to the runner-up >= 0.3: 93/95 right) and poorly when a sibling is near (< 0.3: 39/57,
# "Staff First Name" → FULL_NAME over FIRST_NAME, "ReportingTo" → MANAGER_FULLNAME over MANAGER_ID), so a
# semantic decision loses the shortfall of its gap below SEMANTIC_GAP, and is never "sure" (≥ 0.9) on
# its own: right 60/66 times at ≥ 0.9 before this cap, the share of the 0.6-0.9 band.
SEMANTIC_GAP = 0.3
METHOD_CAP = {"semantic": 0.89}
# A header read with noise parts set aside (signals.noise_variant: "PW4-JOB-CODE", "status_label") is
# decided on a guess about which parts are noise: never "sure", whatever the words left match.
NOISE_CAP = 0.85
WEBMAIL_WORDS = frozenset({"personal", "private", "home"})
_FIELD_WORD = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*\b")


@dataclass
class ColumnMapping:
    """One source column's decision. target None: carried nowhere (candidates still listed)."""

    source: str
    target: str | None
    confidence: float
    method: str
    candidates: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "confidence": round(float(self.confidence), 3),
            "method": self.method,
            "candidates": [{"target": t, "score": round(float(s), 3)} for t, s in self.candidates],
        }


@dataclass
class Mapping:
    """A file's mapping onto one entity."""

    entity: str
    tenant: str | None
    items: list[ColumnMapping]
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "mappings": [i.to_dict() for i in self.items]}

    def targets(self) -> dict[str, str]:
        """source → target for mapped columns only."""
        return {i.source: i.target for i in self.items if i.target}

    def review_reasons(
        self, schema: EntitySchema, operation: str = "ingest", settings: Settings | None = None
    ) -> list[str]:
        """Why this mapping must not be exported on a guess; empty when it may go out.

        (a) an XML-required field of the operation that nothing maps to (unless derivable, or covered
        by a mapped input-only helper whose description names it, e.g. FULL_NAME → FIRST_NAME/LAST_NAME);
        (b) a mapped column below the confidence threshold, unless overridden or remembered."""
        settings = settings or get_settings()
        tenant = self.tenant or "TENANT"
        mapped = {i.target for i in self.items if i.target}
        covered = set(mapped)
        for name in mapped:
            if schema.has_field(name):
                spec = schema.field(name)
                if spec.input_only:
                    covered.update(_FIELD_WORD.findall(spec.description))
        reasons: list[str] = []
        for name in schema.required_for(operation, "xml"):
            if name in covered or schema.field(name).derive:
                continue
            guess = _best_column_for(self.items, name)
            hint = (
                f"; column '{guess[0]}' scored {guess[1]:.2f}: `snapmap map FILE --tenant {tenant} --set "
                f"'{guess[0]}={name}'` or config/tenants/{tenant}.yaml"
                if guess
                else f"; add that column to the file, or map one with `snapmap map FILE --tenant {tenant} "
                f"--set 'HEADER={name}'`"
            )
            reasons.append(f"required field {name} ({operation}) is not mapped{hint}")
        for item in self.items:
            if item.target and item.method not in TRUSTED and item.confidence < settings.confidence_threshold:
                reasons.append(
                    f"map column '{item.source}' (best guess {item.target} {item.confidence:.2f}) with "
                    f"`snapmap map FILE --tenant {tenant} --set '{item.source}={item.target}'` or "
                    f"config/tenants/{tenant}.yaml"
                )
        return reasons


def _best_column_for(items: list[ColumnMapping], target: str) -> tuple[str, float] | None:
    best: tuple[str, float] | None = None
    for item in items:
        for t, s in item.candidates:
            if t == target and (best is None or s > best[1]):
                best = (item.source, s)
    return best


def map_columns(
    columns: list[str],
    profiles: dict[str, ColumnProfile] | None,
    schema: EntitySchema,
    *,
    tenant: str | None = None,
    filename: str | None = None,
    settings: Settings | None = None,
    memory: MappingMemory | None = None,
) -> Mapping:
    """Map source columns onto the schema's fields.

    >>> m = map_columns(["Emp #", "Vorname"], None, load_schema("employee"))   # doctest: +SKIP
    >>> m.targets()   # doctest: +SKIP
    {'Emp #': 'EMPLOYEE_ID', 'Vorname': 'FIRST_NAME'}
    """
    settings = settings or get_settings()
    overrides = load_overrides(tenant, settings)
    fp = fingerprint(columns)
    fields = [f.name for f in schema.fields]
    fidx = {n: i for i, n in enumerate(fields)}
    is_list = [f.type == "list" for f in schema.fields]
    decided: dict[int, ColumnMapping] = {}

    # 1. overrides and carried custom columns always win
    for ci, col in enumerate(columns):
        hit = overrides.target_for(col)
        if hit is not None:
            target, method = hit
            if target is not None and not schema.has_field(target):
                raise ConfigError(
                    f"tenant {tenant}: override '{col}' → {target} is not a field of {schema.entity}; "
                    f"fix config/tenants/{tenant}.yaml (see `snapmap schema {schema.entity}`)",
                    code="bad_override_target",
                    tenant=tenant,
                    header=col,
                    target=target,
                )
            decided[ci] = ColumnMapping(col, target, 1.0, method, [])
        elif schema.custom_fields and custom_field(col) is not None:
            decided[ci] = ColumnMapping(col, col, 1.0, "custom", [])

    # 2. memory: this tenant's confirmed headers are decisions, other hints are signals
    remembered: dict[str, tuple[str, float, str]] = {}
    memory = memory if memory is not None else _default_memory(tenant, settings)
    if memory is not None:
        try:
            remembered = memory.lookup(
                [c for i, c in enumerate(columns) if i not in decided], schema.entity, tenant, fp
            )
        except ConfigError as exc:
            log.warning(
                "mapping memory unavailable; mapping without it", extra={"fields": {"code": exc.code}}
            )
    for ci, col in enumerate(columns):
        hit = remembered.get(col)
        if ci not in decided and hit and hit[1] >= 0.95 and hit[0] in fidx:
            decided[ci] = ColumnMapping(col, hit[0], hit[1], "memory", [])

    todo = [ci for ci in range(len(columns)) if ci not in decided]
    headers = [columns[ci] for ci in todo]
    index = lexical_index(schema, settings.config_dir)
    lex, lex_method = lexical_scores(headers, index)
    sem = None
    sink = np.ones(len(headers), dtype=np.float32)
    need = [k for k in range(len(headers)) if lex[k].max(initial=0.0) < SEMANTIC_SKIP]
    if need:
        texts = [semantic_text(headers[k], index) for k in need]
        both = semantic_and_sink(texts, schema, settings.lancedb_path)
        if both is not None:
            cos, null = both
            sem = np.zeros_like(lex)
            sem[need] = calibrate(cos)
            sink[need] = sink_factors(cos, null)
    base, sem_won = combine(lex, sem)
    # a header nearer a known non-field concept (salary, civil status) than to every field
    base = np.where(lex >= 0.9, base, base * sink[:, None])
    shape = head_factors(headers, index) * coverage_factors(headers, index)
    base = np.where(lex >= 0.9, base, base * shape)
    # a yes/no header is never a date, however well its words match one (is_published)
    base = base * boolean_factors(headers, index, [field_kind(f) for f in schema.fields])
    base = base * plural_key_factors(headers, index, fidx.get(schema.key or ""))
    base = base * id_name_factors(headers, index)
    # a qualifier (probation, previous, tax) the field does not name: another thing's date or number,
    # whatever matched (an alias on the path's last part included)
    base = base * qualifier_factors(headers, index)

    webmail_words = WEBMAIL_WORDS
    factors = np.ones_like(base)
    floors = np.zeros_like(base)
    for k, col in enumerate(headers):
        prof = (profiles or {}).get(col)
        factors[k] = value_factors(prof, schema, webmail_words, index.person_name)
        floors[k] = value_floor(prof, schema, webmail_words)
    # values can confirm a header but only an exact name is certain, and values never overrule it
    exact = lex >= 1.0
    factors = np.where(exact, np.maximum(factors, 1.0), factors)
    scores = np.clip(base * factors, 0.0, np.where(exact, 1.0, NON_EXACT_CAP))
    value_won = floors > scores
    scores = np.maximum(scores, floors)

    mem_won = np.zeros_like(scores, dtype=bool)
    for k, col in enumerate(headers):
        hit = remembered.get(col)
        if hit and hit[0] in fidx and hit[1] > scores[k, fidx[hit[0]]]:
            scores[k, fidx[hit[0]]] = hit[1]
            mem_won[k, fidx[hit[0]]] = True

    blocked = {fidx[d.target] for d in decided.values() if d.target in fidx}
    choice = assign(scores, is_list, blocked)
    # a field about another person the header does not name: kept as the choice when nothing beats it
    # ("sender.email" may be the recruiter's), but no sure one (see signals.person_factors)
    doubt = np.where(lex >= 0.9, 1.0, person_factors(headers, index))
    noisy = [bool(noise_reads(h, index)) for h in headers]

    items: list[ColumnMapping | None] = [decided.get(ci) for ci in range(len(columns))]
    for k, ci in enumerate(todo):
        row = scores[k]
        order = np.argsort(-row)[:3]
        cands = [(fields[j], float(row[j])) for j in order if row[j] > 0.05]
        fi = choice[k]
        if fi is None:
            items[ci] = ColumnMapping(columns[ci], None, 0.0, "none", cands)
            continue
        s = float(row[fi])
        others = [float(row[j]) for j in range(len(fields)) if j != fi]
        runner = max(others, default=0.0)
        method = "value" if value_won[k, fi] else _method(k, fi, lex_method, sem_won, mem_won, base, factors)
        conf = _confidence(s, runner, method) * float(doubt[k, fi])
        if noisy[k] and lex[k, fi] < 0.9:
            conf = min(conf, NOISE_CAP)
        items[ci] = ColumnMapping(columns[ci], fields[fi], max(0.0, min(1.0, conf)), method, cands)
    done = [i for i in items if i is not None]
    log.debug("columns mapped", extra={"fields": {"entity": schema.entity, "columns": len(done)}})
    return Mapping(schema.entity, tenant, done, fp)


def _confidence(score: float, runner: float, method: str) -> float:
    """The chosen field's score, lowered where the method that decided is less reliable than the score
    says: a near runner-up (an ambiguous header), a semantic decision (see SEMANTIC_GAP)."""
    conf = score
    if method not in ("exact", "alias", "memory"):
        conf = score - 0.5 * max(0.0, runner - score + AMBIGUITY_MARGIN)
    if method == "semantic":
        conf = min(conf, score - max(0.0, SEMANTIC_GAP - (score - runner)))
    return min(conf, METHOD_CAP.get(method, 1.0))


SINK_SLOPE = 3.0
SINK_FLOOR = 0.3


def sink_factors(cos: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Per header, a factor < 1 when the header is nearer the "no field" sink (HR data no field takes:
    pay, tax, private life) than to any field of the schema, the lower the nearer."""
    margin = null - cos.max(axis=1, initial=-1.0)
    return np.clip(1.0 - SINK_SLOPE * np.maximum(margin, 0.0), SINK_FLOOR, 1.0).astype(np.float32)


def _method(
    k: int,
    fi: int,
    lex_method: np.ndarray,
    sem_won: np.ndarray,
    mem_won: np.ndarray,
    base: np.ndarray,
    factors: np.ndarray,
) -> str:
    if mem_won[k, fi]:
        return "memory"
    if int(np.argmax(base[k])) != fi and factors[k, fi] > 1.0:
        return "value"
    if sem_won[k, fi]:
        return "semantic"
    code = int(lex_method[k, fi])
    return METHODS[code] if code else "semantic"


def _default_memory(tenant: str | None, settings: Settings) -> MappingMemory | None:
    """The store under the artifacts root, when a tenant is given and the store exists."""
    if not tenant:
        return None
    uri = settings.lancedb_path
    if "://" not in uri:
        from pathlib import Path

        if not (Path(uri) / "mapping_memory.lance").exists():
            return None
    return MappingMemory(uri)
