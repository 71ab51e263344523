"""Which Eightfold entity a file holds: every schema is scored on how well the headers map to it
(weighted by its key and required fields), the values (profiles) and file-name hints; the winner comes
with its confidence and the runners-up. No default guess: below the threshold the entity is None.
No Dagster imports.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snapmap_pipeline.core.mapping.assign import assign
from snapmap_pipeline.core.mapping.evidence import value_factors
from snapmap_pipeline.core.mapping.normalize import load_glossary, words
from snapmap_pipeline.core.mapping.signals import lexical_index, lexical_scores, self_extra
from snapmap_pipeline.core.schema import EntitySchema
from snapmap_pipeline.logs import get_logger
from snapmap_pipeline.settings import Settings, get_settings

log = get_logger(__name__)

W_FIT, W_KEY, W_REQUIRED = 0.45, 0.35, 0.20  # how the header evidence is made up
W_HINT = 0.5  # a file-name hint (EMPLOYEE-MAIN_2024.csv, candidates.xlsx)
TEMPERATURE = 0.08
# A few columns are weak evidence: the headers they share (EMAIL, LOCATION, JOB_CODE) fit several
# entities, so a small lead must not read as certainty. Below this many columns the softmax is softened
# by sqrt(FEW_COLUMNS / n) (one column: ~2.8x), so a short list clears the threshold only on a clear lead
# (its own key, a file-name hint).
FEW_COLUMNS = 8
MIN_EVIDENCE = 0.35  # header evidence below this caps the confidence
MAPPED = 0.5


@dataclass
class EntityGuess:
    """The inferred entity (None = unknown), its confidence and all entities' scores, best first."""

    entity: str | None
    confidence: float
    candidates: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "confidence": round(float(self.confidence), 3),
            "candidates": [{"entity": e, "score": round(float(s), 3)} for e, s in self.candidates],
        }


def _file_words(filename: str | None) -> list[str]:
    if not filename:
        return []
    stem = Path(filename).name
    stem = re.sub(r"\.(csv|tsv|txt|xlsx|xlsm|xls|gz|zip)$", "", stem, flags=re.IGNORECASE)
    return [w for w in words(stem) if not w.isdigit()]


def _hint(file_words: list[str], schema: EntitySchema, glossary_words: tuple[tuple[str, ...], ...]) -> float:
    """1.0 when the file name carries the entity's csv_file name, 0.8 for one of its words, else 0."""
    if not file_words:
        return 0.0
    joined = " ".join(file_words)
    csv_words = " ".join(words(schema.csv_file.replace("-", " ")))
    if csv_words and f" {csv_words} " in f" {joined} ":
        return 1.0
    phrases = {tuple(words(x)) for x in self_extra(schema) if x} | set(glossary_words)
    for p in phrases:
        if not p:
            continue
        for variant in (p, (*p[:-1], p[-1] + "s")):
            if f" {' '.join(variant)} " in f" {joined} ":
                return 0.8
    return 0.0


def _header_evidence(
    columns: list[str], profiles: dict[str, Any] | None, schema: EntitySchema, settings: Settings
) -> tuple[float, float, float]:
    """(fit, key, required): mean assigned score over columns, the key's score, share of required
    fields found."""
    index = lexical_index(schema, settings.config_dir)
    scores, _ = lexical_scores(columns, index)
    if profiles:
        for k, col in enumerate(columns):
            scores[k] = np.clip(scores[k] * value_factors(profiles.get(col), schema, frozenset()), 0, 1)
    choice = assign(scores, [f.type == "list" for f in schema.fields])
    got: dict[str, float] = {}
    total = 0.0
    for k, fi in enumerate(choice):
        if fi is not None:
            s = float(scores[k, fi])
            total += s
            name = schema.fields[fi].name
            got[name] = max(got.get(name, 0.0), s)
    fit = total / max(len(columns), 1)
    key = got.get(schema.key, 0.0)
    required = [n for n in schema.required_for("ingest", "xml") if not schema.field(n).derive]
    found = sum(1 for n in required if got.get(n, 0.0) >= MAPPED)
    return fit, key, (found / len(required)) if required else fit


def infer_entity(
    columns: list[str],
    profiles: dict[str, Any] | None,
    filename: str | None,
    schemas: dict[str, EntitySchema],
    settings: Settings | None = None,
) -> EntityGuess:
    """Score every entity and return the winner, or entity None below `settings.entity_threshold`.

    >>> infer_entity(["Emp #", "Vorname"], None, "EMPLOYEE-MAIN_2024.csv", load_all())  # doctest: +SKIP
    EntityGuess(entity='employee', confidence=0.9..., candidates=[('employee', 0.9...), ...])
    """
    settings = settings or get_settings()
    if not schemas:
        return EntityGuess(None, 0.0, [])
    glossary = load_glossary(Path(settings.config_dir) / "glossary")
    fw = _file_words(filename)
    totals: dict[str, float] = {}
    evidence: dict[str, float] = {}
    for name, schema in schemas.items():
        fit, key, req = _header_evidence(columns, profiles, schema, settings) if columns else (0.0, 0.0, 0.0)
        ev = W_FIT * fit + W_KEY * key + W_REQUIRED * req
        evidence[name] = ev
        totals[name] = ev + W_HINT * _hint(fw, schema, glossary.entity_words(schema.entity))
    top = max(totals.values())
    temperature = TEMPERATURE * math.sqrt(max(1.0, FEW_COLUMNS / max(len(columns), 1)))
    exps = {e: math.exp((t - top) / temperature) for e, t in totals.items()}
    z = sum(exps.values())
    probs = {e: v / z for e, v in exps.items()}
    ranked = sorted(probs.items(), key=lambda kv: -kv[1])
    best, p = ranked[0]
    strength = min(1.0, totals[best] / MIN_EVIDENCE)
    confidence = p * strength
    entity = best if confidence >= settings.entity_threshold else None
    log.info(
        "entity inferred",
        extra={
            "fields": {
                "entity": entity or "unknown",
                "confidence": round(confidence, 3),
                "columns": len(columns),
            }
        },
    )
    return EntityGuess(entity, confidence, [(e, s) for e, s in ranked])
