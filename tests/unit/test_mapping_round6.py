"""Round 6 of the mapping engine: subject qualifiers that keep another thing's date or number off a field,
German written without umlauts, bare key words, classification codes and labels, people named by a
login or by "... by", and the standard HR abbreviations added. Headers here are made up for the rules,
not taken from the labelled splits."""

from __future__ import annotations

import pytest

from snapmap_pipeline.core.mapping import map_columns
from snapmap_pipeline.core.mapping.normalize import load_glossary, split_compounds
from snapmap_pipeline.core.mapping.signals import QUALIFIER_FACTOR, _token_sim
from snapmap_pipeline.core.schema import load_schema
from snapmap_pipeline.settings import Settings


def _target(entity: str, header: str, settings: Settings) -> str | None:
    return map_columns([header], None, load_schema(entity), settings=settings).items[0].target


@pytest.mark.parametrize(
    ("entity", "header"),
    [
        ("employee", "Trial Period End Date"),  # an alias ("end date") does not outweigh the qualifier
        ("employee", "trialPeriodEndDate"),  # nor does a vendor prefix hide it
        ("employee", "Expected Start Date"),
        ("employee", "Previous Manager Email"),
        ("employee", "Visa Expiry Date"),
        ("employee", "Bonus Payout Date"),
        ("employee", "Pension Start Date"),
        ("employee", "Tax ID"),
        ("position", "Target Fill Date"),
    ],
)
def test_a_subject_qualifier_the_field_does_not_name_keeps_the_header_off_it(entity, header, settings):
    assert _target(entity, header, settings) is None


@pytest.mark.parametrize(
    ("entity", "header", "target"),
    [
        ("candidate", "Date of Birth", "DATE_OF_BIRTH"),  # the field names "birth" itself
        ("employee", "Payroll Number", "EMPLOYEE_ID"),  # an alias names "payroll"
        ("employee", "Original Hire Date", "HIRING_DATE"),  # a neutral modifier is no qualifier
    ],
)
def test_a_qualifier_the_field_names_itself_still_maps(entity, header, target, settings):
    assert _target(entity, header, settings) == target


def test_qualifiers_are_data_and_strong_enough_to_null_an_alias(settings):
    from snapmap_pipeline.core.mapping.normalize import stem

    glossary = load_glossary(settings.config_dir / "glossary")
    assert {stem(w) for w in ("probation", "previous", "tax")} <= glossary.subject_qualifiers
    assert 0.96 * QUALIFIER_FACTOR < 0.4  # an alias score times the factor is under the null threshold


def test_german_written_without_umlauts_reads_as_folded_german(settings):
    vocab = frozenset({"geschaftlich", "telefon"})
    assert split_compounds(["geschaeftlich"], vocab) == ["geschaftlich"]
    assert split_compounds(["value", "queue"], vocab) == ["value", "queue"]  # nothing known: unchanged
    assert _target("employee", "TelefonGeschaeftlich", settings) == "PHONE"


@pytest.mark.parametrize(
    ("entity", "header", "target"),
    [
        ("employee", "Ref", "EMPLOYEE_ID"),  # a bare key word is the record's own key
        ("course", "key", "COURSE_ID"),
        ("employee", "workerType.title", "EMPLOYEE_TYPE"),  # the label of a classification is it
        ("employee", "supervisorUuid", "MANAGER_ID"),
        ("employee", "LM Email", "MANAGER_EMAIL"),
        ("employee", "LWD", "TERMINATION_DATE"),
        ("employee", "Direct Dial", "PHONE"),
        ("employee", "manager.username", "MANAGER_EMAIL"),  # another person's login is their email
        ("employee", "userName", "USER_ID"),  # ... the record's own login stays its user id
        ("position", "hiringManager.login", "HIRING_MANAGER_EMAIL"),
        ("position", "HM Name", "HIRING_MANAGER_NAME"),
        ("position", "JD", "JOB_DESCRIPTION"),
        ("candidate", "hyperlink", "URL"),
    ],
)
def test_round6_general_rules_map(entity, header, target, settings):
    assert _target(entity, header, settings) == target


@pytest.mark.parametrize(
    ("entity", "header"),
    [
        ("employee", "contractStatusCode"),  # the code of a status is a status, not JOB_CODE
        ("employee", "Email Type ID"),  # the id of a type is no email and no employee id
        ("position", "Created By"),  # who created it, not when
        ("position", "Last Modified By"),
        ("employee", "Citizenship / Nationality"),  # nationality is no race (the "no field" sink)
    ],
)
def test_classifications_people_and_nationality_map_to_nothing(entity, header, settings):
    assert _target(entity, header, settings) is None


def test_agent_and_patient_words_are_no_typos_of_each_other():
    sim = _token_sim(["employer", "trainee"], ["employe", "employ", "trainer"], {})
    assert sim[0, 0] == 0.0 and sim[1, 2] == 0.0
