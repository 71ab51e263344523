"""Round 10 of the mapping engine: classes of misses that recur across the unseen splits. A lifecycle
state read as the record's status, the head-first word order of Romance languages for an external id,
the start of a job (not of the employment), a path's trailing part that loses a word naming a more
specific field, and a synonym of the record that names fields of its own (a position's posting). Headers
here are made up for the rules, not taken from the labelled splits."""

from __future__ import annotations

import pytest

from snapmap_pipeline.core.mapping import map_columns
from snapmap_pipeline.core.mapping.signals import STATE_SCORE, _record_state, lexical_index
from snapmap_pipeline.core.schema import load_schema
from snapmap_pipeline.settings import Settings


def _one(header: str, entity: str, settings: Settings):
    return map_columns([header], None, load_schema(entity), settings=settings).items[0]


# -- a lifecycle state is the record's status ------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "entity"),
    [
        ("Deprecated", "course"),  # a state alone
        ("is_discontinued", "course"),  # a yes/no for one state
        ("SuspendedState", "course"),  # a status head qualified by a state
        ("Withdrawn", "position"),
        ("DraftState", "position"),  # a state before a status head
    ],
)
def test_a_lifecycle_state_maps_to_the_records_status_but_never_sure(header, entity, settings):
    got = _one(header, entity, settings)
    assert got.target == "STATUS"
    assert settings.confidence_threshold <= got.confidence < 0.9
    assert got.confidence <= STATE_SCORE + 0.1


@pytest.mark.parametrize("header", ["Deprecated", "is_discontinued", "Withdrawn"])
def test_a_lifecycle_state_stays_null_where_the_record_has_no_status_of_its_own(header, settings):
    """An employee schema has no status field of the record: the state is carried nowhere."""
    assert _one(header, "employee", settings).target is None


def test_a_place_before_state_is_still_an_address(settings):
    """'Home State' names where someone lives, not the record's lifecycle: no status reading."""
    got = _one("Home State", "position", settings)
    assert got.target != "STATUS" or got.confidence < 0.9
    cand = _one("Home State", "candidate", settings)
    assert cand.target == "ADDRESS_DETAILS_STATE"


def test_a_date_of_a_state_is_still_a_date(settings):
    """'Archived Date' is when, not the status: the state rule needs the state alone."""
    got = _one("Archived Date", "course", settings)
    assert got.target != "STATUS"


# -- head-first word order for the record's own id ---------------------------------------------------
@pytest.mark.parametrize(
    ("header", "entity", "want"),
    [
        ("Identifiant externe", "course", "COURSE_ID"),  # French
        ("Id externo", "candidate", "CANDIDATE_ID"),  # Spanish / Portuguese
        ("ID esterno", "employee", "EMPLOYEE_ID"),  # Italian
        ("ID de la source", "course", "COURSE_ID"),  # "id of the source"
    ],
)
def test_an_id_written_before_where_it_lives_is_the_records_key(header, entity, want, settings):
    english = _one("External ID", entity, settings)
    got = _one(header, entity, settings)
    assert english.target == want
    assert got.target == want
    assert got.confidence >= settings.confidence_threshold


def test_an_id_before_a_subject_is_not_the_key(settings):
    """Only where an id lives (external, source, correlation) makes it the record's key: an id of a tax
    is not, whatever the order."""
    assert _one("ID fiscal", "employee", settings).target != "EMPLOYEE_ID"
    assert _one("ID tax", "employee", settings).target != "EMPLOYEE_ID"


# -- the start of a job ------------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["Start Date in Job", "Date Started Position", "Role Start"])
def test_the_start_of_a_job_is_the_role_change_not_the_hire(header, settings):
    got = _one(header, "employee", settings)
    assert got.target == "ROLE_CHANGE_DATE"


@pytest.mark.parametrize("header", ["Employment Start", "Date Started Employment", "Start Date"])
def test_the_start_of_the_employment_is_still_the_hire(header, settings):
    assert _one(header, "employee", settings).target == "HIRING_DATE"


# -- a path's trailing part that dropped a telling word -------------------------------------------
@pytest.mark.parametrize(
    ("header", "want", "other"),
    [
        ("worker.preferredName.firstName", "PREFERRED_FIRST_NAME", "FIRST_NAME"),
        ("profile.preferredName.surname", "PREFERRED_LAST_NAME", "LAST_NAME"),
    ],
)
def test_a_trailing_part_that_lost_a_qualifier_yields_to_the_fuller_reading(header, want, other, settings):
    got = _one(header, "employee", settings)
    assert got.target == want
    runner = dict(got.candidates).get(other, 0.0)
    assert runner < 0.9  # the bare part's own match is no longer "sure"


@pytest.mark.parametrize(
    ("header", "want"),
    [("worker.legalName.firstName", "FIRST_NAME"), ("person.name.givenName", "FIRST_NAME")],
)
def test_a_trailing_part_whose_dropped_words_name_nothing_more_keeps_its_match(header, want, settings):
    got = _one(header, "employee", settings)
    assert got.target == want
    assert got.confidence >= 0.9


def test_a_process_word_names_a_status_only_before_a_status_head(settings):
    """'Recruitment State' is the record's status; a process word alone is not read as one by the state
    rule (whatever else may match it)."""
    assert _one("Recruitment State", "position", settings).target == "STATUS"
    index = lexical_index(load_schema("position"), settings.config_dir)
    assert _record_state(list(index.canon(["workflow"])), index) == []
    assert _record_state(list(index.canon(["workflow", "state"])), index) != []
    assert _record_state(list(index.canon(["archived"])), index) != []


# -- a synonym of the record that names fields of its own --------------------------------------------
@pytest.mark.parametrize(
    ("header", "want"),
    [("Job Posting Name", "POSTING_TITLE"), ("Posting Web Link", "POSTING_URL")],
)
def test_a_record_synonym_that_names_fields_reads_as_that_part_of_the_record(header, want, settings):
    """A position's postings have a title and a url of their own: 'Posting Name' is the posting's
    title, not the position's, where 'Job Name' ('job' is the word of the key, JOB_ID) stays TITLE."""
    assert _one(header, "position", settings).target == want
    assert _one("Job Name", "position", settings).target == "TITLE"


def test_a_record_synonym_with_no_field_of_that_kind_is_still_the_record(settings):
    assert _one("Posting Identifier", "position", settings).target == "JOB_ID"
    assert _one("Posting Location", "position", settings).target == "LOCATION"
