"""The labelled header sets: the dev split (tests/data/headers/*.yaml, tuned on), the held-out split
(tests/data/headers/holdout/*.yaml, whose misses were studied by error class), the fresh split
(tests/data/headers/fresh/*.yaml, studied in the second round), the fresh2 split
(tests/data/headers/fresh2/*.yaml, built before the second round, studied in the third) and the fresh3
split (tests/data/headers/fresh3/*.yaml, built before the third round from systems no other split uses,
measured untuned once after it, then studied in the fourth round) and the fresh4 split
(tests/data/headers/fresh4/*.yaml, built in session 3 from 24 systems no other split uses while round 4
was under way, measured untuned after it, then studied by error class in round 5, so no longer an
estimate), and the fresh5 split (tests/data/headers/fresh5/*.yaml, built after round 4 from 21 systems, 12
new, measured untuned after round 5 (0.860 / 0.649, its honest figure), then studied by error class in
round 6, so no longer an estimate either), and the fresh6 split (tests/data/headers/fresh6/*.yaml, built in
session 4 while round 6 was under way, from 45 systems (43 new), mostly plain export column titles,
measured untuned after round 6 (0.730 / 0.511, its honest figure), then studied by error class and for
calibration in round 7, so no longer an estimate either), and the fresh7 split
(tests/data/headers/fresh7/*.yaml, built while round 7 was under way from 33 systems (18 new),
measured untuned after round 7 (0.709 / 0.403, its honest figure), then studied in round 8), and the
fresh8 split (tests/data/headers/fresh8/*.yaml, built while round 8 was under way from 25 systems (14
new, a sixth Japanese and German labels), measured untuned after round 8 (0.606 / 0.307, its honest
figure), then studied in round 9 (noise parts, CJK labels), so no longer an estimate either), and the fresh9
split (tests/data/headers/fresh9/*.yaml, built in session 5 while round 9 was under way from 24 systems
(14 new), measured untuned after round 9 (0.758 / 0.452, its honest figure, the same as the session-5
starting engine's 0.758 / 0.455), then studied with fresh4..fresh8 in round 10 (miss classes recurring
across splits: lifecycle states, head-first key ids, a job's start, paths that drop a qualifier), so no
longer an estimate either), and the fresh10 split (tests/data/headers/fresh10/*.yaml, built in session 5
while round 10 was under way from 22 systems (12 new), measured untuned after round 10 (0.803 / 0.578,
its honest figure; 0.803 with the session-5 starting engine, 0.796 after round 9), never studied): their
rules, and regression floors.

The floors sit a little below what the engine reached (see bench/bench_mapping.py for the figures); they
catch regressions, they are not tuned targets."""

from __future__ import annotations

import difflib
import unicodedata
from pathlib import Path

import pytest
import yaml

from snapmap_pipeline.core.mapping import map_columns
from snapmap_pipeline.core.mapping.normalize import load_glossary, normalize, stem
from snapmap_pipeline.core.schema import load_all
from snapmap_pipeline.settings import Settings

DATA = Path(__file__).resolve().parent.parent / "data" / "headers"
# every split's folder, in the order they were built (dev is the top level)
SPLITS = yaml.safe_load((DATA.parent / "header_splits.yaml").read_text())["splits"]
FOLDERS = {name: DATA / name for name in SPLITS}
# (top-1, null precision) floors per split. Round 4 reached 0.938 / 0.977 (dev, 289 cases), 0.922 / 0.861
# (holdout, 153), 1.000 / 1.000 (fresh, 120), 0.917 / 0.720 (fresh2, 121), 0.917 / 0.875 (fresh3, 121:
# 0.752 untuned after round 3, its honest figure; studied in round 4, so no longer an estimate)
# Round 6 (subject qualifiers, classification codes and labels, bare key words, German without umlauts,
# logins of other people, standard abbreviations) reached 0.962 / 0.985 (dev), 0.928 / 0.889 (holdout),
# 1.000 / 1.000 (fresh), 0.926 / 0.750 (fresh2), 0.926 / 0.880 (fresh3), 0.830 / 0.595 (fresh4) and
# 0.936 / 0.812 (fresh5).
FLOORS = {
    "dev": (0.94, 0.96),
    "holdout": (0.91, 0.86),
    "fresh": (0.97, 0.95),
    "fresh2": (0.91, 0.74),  # round 10 (a lifecycle state is the status): 0.934 / 0.783
    "fresh3": (0.90, 0.85),
    # fresh4, 182 cases: 0.626 / 0.328 before round 4 and 0.676 / 0.379 after it, both untuned; studied
    # in round 5 (Salesforce custom fields, Dutch compounds and qualifiers, .Omschrijving/.Code leaves):
    # 0.780 / 0.500; 0.830 / 0.595 after round 6
    "fresh4": (0.80, 0.56),
    # fresh5, 157 cases from 21 systems (12 new), built after round 4: 0.758 with the session-3 starting
    # engine, 0.854 after round 4, 0.860 / 0.649 after round 5 (its honest, untuned figure); studied by
    # error class in round 6 (qualifiers, umlaut-free German, uuid / login / classification rules):
    # 0.936 / 0.812, no longer an estimate
    # round 10 (lifecycle states): 0.943 / 0.839
    "fresh5": (0.92, 0.80),
    # fresh6, 152 cases from 45 systems (43 new), built while round 6 was under way: 0.724 / 0.500 with
    # the session-4 starting engine, 0.730 / 0.511 after round 6 (its honest, untuned figure); studied in
    # round 7 (calibration per deciding method, the record's own word before a field's words, Nordic
    # letters and words, availability dates): 0.763 / 0.533, no longer an estimate
    # round 9 (noise parts set aside): 0.776 / 0.558
    # round 10 (lifecycle states, the start of a job): 0.789 / 0.571
    "fresh6": (0.76, 0.54),
    # fresh7, 172 cases from 33 systems (18 new), built while round 7 was under way and never studied:
    # 0.709 / 0.406 with the session-4 starting engine, 0.709 / 0.403 after rounds 6 and 7 (the honest
    # figure: those rounds fitted the studied splits and did not move it); studied in round 8 (vendor
    # field knowledge from vendors' public field references, config/glossary/vendors.yaml; its SAP
    # codes that are labelled headers here stay out of the glossary): 0.767 / 0.458; round 10 (a record
    # synonym naming fields of its own: "posting"): 0.773 / 0.458
    "fresh7": (0.75, 0.42),
    # fresh8, 155 cases from 25 systems (14 new), built while round 8 was under way: 0.613 / 0.311 with
    # the session-4 starting engine, 0.600 / 0.299 after rounds 6 and 7, 0.606 / 0.307 after round 8 (the
    # honest, untuned figure; 21 of its cases are Japanese UKG Pro labels); studied in round 9 (noise parts
    # of a header set aside: system codes, "#" tags, decoration words, level numbers; CJK labels segmented
    # into glossary words, config/glossary/cjk.yaml): 0.858 / 0.622, no longer an estimate
    "fresh8": (0.83, 0.58),
    # fresh9, 153 cases from 24 systems (14 new), built in session 5 while round 9 was under way: 0.758 /
    # 0.455 with the session-5 starting engine, 0.758 / 0.452 after round 9 (the honest, untuned figure;
    # 0.771 before two CJK glossary words that are fresh9 labels were taken out); studied with fresh4..8
    # in round 10 by miss classes recurring across splits (lifecycle states as the status, head-first
    # key ids, a path's trailing part that dropped a qualifier): 0.778 / 0.463, no longer an estimate
    "fresh9": (0.75, 0.44),
    # fresh10, 157 cases from 22 systems (12 new), built in session 5 while round 10 was under way: 0.803
    # / 0.565 with the session-5 starting engine, 0.796 / 0.565 after round 9, 0.803 / 0.578 after round
    # 10 (the honest, untuned figure); never studied
    "fresh10": (0.78, 0.54),
}


def _cases(folder: Path = DATA) -> list[dict]:
    out: list[dict] = []
    for path in sorted(folder.glob("*.yaml")):
        out.extend(yaml.safe_load(path.read_text(encoding="utf-8"))["cases"])
    return out


@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict]]:
    """Every split by name, in the order they were built."""
    return {"dev": _cases(), **{name: _cases(folder) for name, folder in FOLDERS.items()}}


@pytest.mark.parametrize("name", ["fresh4", "fresh5", "fresh6", "fresh7", "fresh8", "fresh9", "fresh10"])
def test_new_split_is_big_cited_new_and_unseen(name, splits):
    split = splits[name]
    assert len(split) >= 150
    assert len({c["system"] for c in split}) >= 15
    share = sum(1 for c in split if c["target"] is None) / len(split)
    assert 0.1 <= share <= 0.2, f"distractor share {share:.2f}"
    for c in split:
        assert set(c) == {"system", "entity", "header", "target", "source"}
        assert c["source"].startswith("https://")
    names = list(splits)
    older = [c for earlier in names[: names.index(name)] for c in splits[earlier]]
    assert len({c["system"] for c in split} - {c["system"] for c in older}) >= 8
    assert not {c["source"] for c in split} & {c["source"] for c in older}, "cite documents no split cites"
    seen = {(c["entity"], c["header"]) for c in older}
    assert not [c["header"] for c in split if (c["entity"], c["header"]) in seen], "headers must be unseen"


def test_fresh_split_is_big_varied_cited_and_mostly_mappable(splits):
    cases = splits["dev"]
    holdout = splits["holdout"]
    fresh = splits["fresh"]
    assert len(fresh) >= 120
    systems = {c["system"] for c in fresh}
    assert len(systems) >= 8
    share = sum(1 for c in fresh if c["target"] is None) / len(fresh)
    assert 0.1 <= share <= 0.2, f"distractor share {share:.2f}"
    for c in fresh:
        assert set(c) == {"system", "entity", "header", "target", "source"}
        assert c["source"].startswith("https://")
    # mostly systems the other splits barely use
    older = [c["system"] for c in cases + holdout]
    assert sum(1 for s in systems if older.count(s) <= 3) >= 8


def test_fresh2_split_is_big_cited_and_from_new_systems(splits):
    cases = splits["dev"]
    holdout = splits["holdout"]
    fresh = splits["fresh"]
    fresh2 = splits["fresh2"]
    assert len(fresh2) >= 120
    share = sum(1 for c in fresh2 if c["target"] is None) / len(fresh2)
    assert 0.1 <= share <= 0.2, f"distractor share {share:.2f}"
    for c in fresh2:
        assert set(c) == {"system", "entity", "header", "target", "source"}
        assert c["source"].startswith("https://")
    older = {c["system"] for c in cases + holdout + fresh}
    assert len({c["system"] for c in fresh2} - older) >= 8


def test_fresh3_split_is_big_cited_new_and_unseen(splits):
    cases = splits["dev"]
    holdout = splits["holdout"]
    fresh = splits["fresh"]
    fresh2 = splits["fresh2"]
    fresh3 = splits["fresh3"]
    assert len(fresh3) >= 120
    share = sum(1 for c in fresh3 if c["target"] is None) / len(fresh3)
    assert 0.1 <= share <= 0.2, f"distractor share {share:.2f}"
    for c in fresh3:
        assert set(c) == {"system", "entity", "header", "target", "source"}
        assert c["source"].startswith("https://")
    older = cases + holdout + fresh + fresh2
    assert len({c["system"] for c in fresh3} - {c["system"] for c in older}) >= 8
    assert not {c["source"] for c in fresh3} & {c["source"] for c in older}, "cite documents no split cites"
    seen = {(c["entity"], c["header"]) for c in older}
    assert not [c["header"] for c in fresh3 if (c["entity"], c["header"]) in seen], "headers must be unseen"


def test_holdout_is_separate_big_and_mostly_mappable(splits):
    cases = splits["dev"]
    holdout = splits["holdout"]
    assert len(holdout) >= 150
    assert len({c["system"] for c in holdout}) >= 15
    share = sum(1 for c in holdout if c["target"] is None) / len(holdout)
    assert 0.1 <= share <= 0.25, f"distractor share {share:.2f}: real exports are mostly mappable"
    for c in holdout:
        assert set(c) == {"system", "entity", "header", "target", "source"}
        assert c["source"] and "://" in c["source"]
    dev_sources = {c["source"] for c in cases}
    assert not dev_sources & {c["source"] for c in holdout}, "holdout must cite documents dev does not"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifacts root for both splits, so the field index is built once."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def schemas():
    return load_all()


def test_set_is_big_varied_and_cited(splits):
    cases = splits["dev"]
    assert len(cases) >= 200
    assert len({c["system"] for c in cases}) >= 8
    assert sum(1 for c in cases if c["target"] is None) >= 20
    for c in cases:
        assert set(c) == {"system", "entity", "header", "target", "source"}
        assert c["source"] and ("://" in c["source"] or ":" in c["source"])


def test_targets_are_real_fields(splits, schemas):
    for c in [c for split in splits.values() for c in split]:
        if c["entity"] in schemas and c["target"] is not None:
            assert c["target"] in schemas[c["entity"]].field_names, c


def test_no_header_is_an_alias_field_name_or_glossary_key(splits, schemas):
    """Otherwise the accuracy would only measure a lookup table (every split). The concept thesaurus
    (embedded field texts) and the unmapped concepts (the "no field" sink) count as glossary too."""
    glossary = load_glossary(Path(Settings().config_dir) / "glossary")
    keys = {" ".join(k) for k in glossary.phrases} | set(glossary.tokens)
    keys |= {p for phrases in glossary.concepts.values() for p in phrases}
    keys |= set(glossary.unmapped)
    # a subject qualifier (qualifiers.yaml) nulls a bare header naming it: a lookup too (kept stemmed)
    qualifiers = glossary.subject_qualifiers
    for c in [c for split in splits.values() for c in split]:
        schema = schemas.get(c["entity"])
        # the header as written: `__` as a plain separator, so a Salesforce field keeps its namespace
        # and suffix here (`hr2d__Surname__c` is not the glossary's "surname", though it reads as it)
        norm = normalize(c["header"].replace("__", " "))
        assert norm not in keys, f"{c['header']!r} is a glossary key"
        # a CJK label is no glossary word either (cjk.yaml holds words a label is segmented into; a
        # one- or two-character word such as 姓 "family name" may be a whole label by itself)
        label = unicodedata.normalize("NFKC", c["header"]).strip()
        assert len(label) <= 2 or label not in glossary.cjk, f"{c['header']!r} is a CJK glossary key"
        assert " ".join(stem(w) for w in norm.split()) not in qualifiers, f"{c['header']!r} is a qualifier"
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


@pytest.mark.parametrize("split", list(FLOORS))
def test_accuracy_floor_and_beats_difflib(split, splits, schemas, store):
    settings = Settings(artifacts_root=str(store))
    data = splits[split]
    usable = [c for c in data if c["entity"] in schemas]
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
    top1_floor, null_floor = FLOORS[split]
    assert top1 >= top1_floor, f"{split} top-1 {top1:.3f} fell below {top1_floor}"
    assert top1 > baseline / len(usable) + 0.1
    assert true_null / max(predicted_null, 1) >= null_floor
