"""The labelled header set (tests/data/headers): its rules, and a regression floor on accuracy.

The floor sits a little below what the engine reached when the set was built (see bench/bench_mapping.py
for the figures); it catches regressions, it is not a tuned target."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from snapmap_pipeline.core.mapping import map_columns
from snapmap_pipeline.core.mapping.normalize import load_glossary, normalize
from snapmap_pipeline.core.schema import load_all
from snapmap_pipeline.settings import Settings

DATA = Path(__file__).resolve().parent.parent / "data" / "headers"
TOP1_FLOOR = 0.80
NULL_PRECISION_FLOOR = 0.82


def _cases() -> list[dict]:
    out: list[dict] = []
    for path in sorted(DATA.glob("*.yaml")):
        out.extend(yaml.safe_load(path.read_text(encoding="utf-8"))["cases"])
    return out


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    return _cases()


@pytest.fixture(scope="module")
def schemas():
    return load_all()


def test_set_is_big_varied_and_cited(cases):
    assert len(cases) >= 200
    assert len({c["system"] for c in cases}) >= 8
    assert sum(1 for c in cases if c["target"] is None) >= 20
    for c in cases:
        assert set(c) == {"system", "entity", "header", "target", "source"}
        assert c["source"] and ("://" in c["source"] or ":" in c["source"])


def test_targets_are_real_fields(cases, schemas):
    for c in cases:
        if c["entity"] in schemas and c["target"] is not None:
            assert c["target"] in schemas[c["entity"]].field_names, c


def test_no_header_is_an_alias_field_name_or_glossary_key(cases, schemas):
    """Otherwise the accuracy would only measure a lookup table."""
    glossary = load_glossary(Path(Settings().config_dir) / "glossary")
    keys = {" ".join(k) for k in glossary.phrases} | set(glossary.tokens)
    for c in cases:
        schema = schemas.get(c["entity"])
        norm = normalize(c["header"])
        assert norm not in keys, f"{c['header']!r} is a glossary key"
        if schema is None:
            continue
        known = {normalize(f.name) for f in schema.fields}
        known |= {normalize(a) for f in schema.fields for a in f.aliases}
        assert norm not in known, f"{c['header']!r} is a field name or alias of {schema.entity}"


def _difflib_target(header: str, schema) -> str | None:
    names = {f.name.lower().replace("_", " "): f.name for f in schema.fields}
    for f in schema.fields:
        for a in f.aliases:
            names.setdefault(a.lower(), f.name)
    best = difflib.get_close_matches(header.lower().replace("_", " "), list(names), n=1, cutoff=0.6)
    return names[best[0]] if best else None


def test_accuracy_floor_and_beats_difflib(cases, schemas, artifacts):
    settings = Settings(artifacts_root=str(artifacts))
    usable = [c for c in cases if c["entity"] in schemas]
    right = baseline = predicted_null = true_null = 0
    for c in usable:
        schema = schemas[c["entity"]]
        got = map_columns([c["header"]], None, schema, settings=settings).items[0].target
        right += got == c["target"]
        baseline += _difflib_target(c["header"], schema) == c["target"]
        if got is None:
            predicted_null += 1
            true_null += c["target"] is None
    top1 = right / len(usable)
    assert top1 >= TOP1_FLOOR, f"top-1 {top1:.3f} fell below {TOP1_FLOOR}"
    assert top1 > baseline / len(usable) + 0.1
    assert true_null / max(predicted_null, 1) >= NULL_PRECISION_FLOOR
