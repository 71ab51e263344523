"""Round 7 of the mapping engine: confidence that reflects how reliable the deciding method is on unseen
headers (a semantic decision with a near runner-up is no sure thing), the record's own word before a
field's words, Nordic letters and words. Headers here are made up for the rules, not taken from the
labelled splits."""

from __future__ import annotations

import pytest

from snapmap_pipeline.core.mapping import map_columns
from snapmap_pipeline.core.mapping.engine import METHOD_CAP, SEMANTIC_GAP, _confidence
from snapmap_pipeline.core.mapping.normalize import normalize
from snapmap_pipeline.core.schema import load_schema


def test_a_semantic_decision_is_never_sure_and_less_so_with_a_near_runner_up():
    far = _confidence(0.97, 0.2, "semantic")
    near = _confidence(0.97, 0.97 - SEMANTIC_GAP / 3, "semantic")
    assert far <= METHOD_CAP["semantic"] < 0.9
    assert near < far
    assert near < 0.8  # well under "sure": a sibling field was nearly as close


def test_a_lexical_decision_keeps_its_score_when_nothing_competes():
    assert _confidence(0.96, 0.3, "alias") == pytest.approx(0.96)
    assert _confidence(0.92, 0.3, "glossary") == pytest.approx(0.92)
    # a close runner-up still lowers a glossary or fuzzy decision
    assert _confidence(0.8, 0.79, "fuzzy") < 0.8


def test_confidence_in_a_mapping_never_exceeds_the_semantic_cap_when_the_model_decided(settings):
    schema = load_schema("employee")
    headers = ["Who This Person Answers To", "Pitch About Yourself", "Place Of Work"]
    for item in map_columns(headers, None, schema, settings=settings).items:
        if item.method == "semantic":
            assert item.confidence <= METHOD_CAP["semantic"]


@pytest.mark.parametrize(
    ("entity", "header", "target"),
    [
        ("employee", "Worker Email", "EMAIL"),
        ("employee", "Associate Last Name", "LAST_NAME"),
        ("candidate", "Applicant First Name", "FIRST_NAME"),
    ],
)
def test_the_records_own_word_before_a_fields_words_names_that_field(entity, header, target, settings):
    schema = load_schema(entity)
    if target not in schema.field_names:
        pytest.skip(f"{entity} has no {target}")
    item = map_columns([header], None, schema, settings=settings).items[0]
    assert item.target == target
    assert item.confidence >= settings.confidence_threshold


def test_nordic_letters_fold_into_one_word():
    assert normalize("Fødselsdato") == "fodselsdato"
    assert normalize("Ansættelse") == "ansaettelse"
    assert normalize("Łódź Office") == "lodz office"


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("Förnamn", "FIRST_NAME"),  # Swedish
        ("Efternavn", "LAST_NAME"),  # Danish
        ("Ansettelsesdato", "HIRING_DATE"),  # Norwegian
        ("Sluttdato", "TERMINATION_DATE"),
        ("Avdelning", "BUSINESS_UNIT"),
    ],
)
def test_nordic_hr_words_map(header, target, settings):
    schema = load_schema("employee")
    if target not in schema.field_names:
        pytest.skip(f"employee has no {target}")
    assert map_columns([header], None, schema, settings=settings).items[0].target == target


def test_an_availability_date_is_no_employment_start(settings):
    schema = load_schema("candidate")
    assert map_columns(["Earliest Joining Date"], None, schema, settings=settings).items[0].target is None
