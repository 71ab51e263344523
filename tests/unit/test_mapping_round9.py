"""Round 9 of the mapping engine: headers whose meaning is plain once a noise part is set aside (a system
code fused with a number, a "#" tag, a decoration word, a level number), and CJK labels read as the
English words they are made of. Headers here are made up for the rules, not taken from the labelled
splits."""

from __future__ import annotations

import pytest

from snapmap_pipeline.core.mapping import map_columns
from snapmap_pipeline.core.mapping.engine import NOISE_CAP
from snapmap_pipeline.core.mapping.normalize import CJK_UNKNOWN, cjk_words, load_glossary
from snapmap_pipeline.core.mapping.signals import lexical_index, noise_reads
from snapmap_pipeline.core.schema import load_schema
from snapmap_pipeline.settings import Settings


def _one(header: str, entity: str, settings: Settings):
    return map_columns([header], None, load_schema(entity), settings=settings).items[0]


# -- noise parts -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("noisy", "plain", "entity"),
    [
        ("ZK9-HIRE-DATE", "Hire Date", "employee"),  # a system code fused with a number
        ("gender#xyz", "Gender", "employee"),  # a "#" tag after the field
        ("department_obj", "Department", "employee"),  # a decoration word
        ("country_label", "Country", "employee"),
        ("Org Level 3 Code", "Org Level Code", "employee"),  # a level number
    ],
)
def test_a_header_with_a_noise_part_maps_as_its_plain_words_but_less_sure(noisy, plain, entity, settings):
    want = _one(plain, entity, settings)
    got = _one(noisy, entity, settings)
    assert want.target is not None
    assert got.target == want.target
    # the noise part is a guess: never "sure", and never surer than the header without it
    assert got.confidence <= min(want.confidence, NOISE_CAP) < 0.9
    assert got.confidence >= settings.confidence_threshold


def test_a_short_word_written_as_a_word_is_no_noise(settings):
    """'abc_email' may abbreviate a subject (whose email?): only codes the header writes as codes
    (fused with a number, after '#') or decoration words are set aside."""
    index = lexical_index(load_schema("employee"), settings.config_dir)
    assert noise_reads("abc_email", index) == ()
    assert noise_reads("ABC1-EMAIL", index) != ()


@pytest.mark.parametrize(
    ("header", "entity"),
    [
        ("PW4-SHIRT-SIZE", "employee"),  # nothing known is left once the code is set aside
        ("QX2 Status", "employee"),  # a kind word alone after a code (a tax form's status) names nothing
        ("ZK9-Badge-Color", "employee"),
        ("Shirt Size", "employee"),
    ],
)
def test_a_distractor_stays_null_with_or_without_a_noise_part(header, entity, settings):
    assert _one(header, entity, settings).target is None


def test_a_decorated_kind_word_is_that_kind(settings):
    """'status_label' is the status; 'QX2 Status' (a code before a kind word) is not read as one."""
    index = lexical_index(load_schema("position"), settings.config_dir)
    assert ("status",) in noise_reads("status_lbl", index)
    assert noise_reads("QX2 Status", index) == ()
    assert _one("status_lbl", "position", settings).target == _one("Status", "position", settings).target


# -- CJK labels --------------------------------------------------------------------------------------
def test_cjk_segmentation_is_greedy_longest_match_with_whole_label_readings():
    table = {"入社": ("hire",), "日": ("date",), "入社日付": ("onboarding", "day"), "名": ("name",)}
    alone = {"名": ("first", "name")}
    assert cjk_words("入社日付", table).split() == ["onboarding", "day"]  # the longest word wins
    assert cjk_words("入社日", table).split() == ["hire", "date"]
    assert cjk_words("入社 ID", table).split() == ["hire", "ID"]  # other text kept as written
    assert cjk_words("名", table, alone).split() == ["first", "name"]  # a word alone may read otherwise
    assert cjk_words("社名", table, alone).split() == [CJK_UNKNOWN, "name"]  # an unknown part stays marked
    assert cjk_words("Hire Date", table) == "Hire Date"


def test_the_cjk_glossary_holds_words_not_labels(settings):
    g = load_glossary(settings.config_dir / "glossary")
    assert g.cjk and all(1 <= len(k) <= 6 for k in g.cjk)


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("社員番号", "EMPLOYEE_ID"),  # Japanese: employee + number
        ("部署名", "BUSINESS_UNIT"),  # department + name
        ("入职日期", "HIRING_DATE"),  # Chinese: hire + date
        ("员工编号", "EMPLOYEE_ID"),
        ("离职日期", "TERMINATION_DATE"),
        ("입사일", "HIRING_DATE"),  # Korean: hire + date
        ("부서", "BUSINESS_UNIT"),
    ],
)
def test_a_cjk_label_maps_as_the_words_it_is_made_of(header, target, settings):
    item = _one(header, "employee", settings)
    assert item.target == target
    assert item.confidence >= settings.confidence_threshold


@pytest.mark.parametrize("header", ["給与", "基本給", "扶養家族数", "生年月日"])
def test_a_cjk_label_for_something_no_field_holds_stays_null(header, settings):
    """Salary, base pay, number of dependants (words the glossary does not hold) and a birth date (a
    concept Eightfold's employee has no field for)."""
    assert _one(header, "employee", settings).target is None


def test_cjk_labels_map_together_in_one_file(settings):
    headers = ["社員番号", "姓", "名", "メール", "部署", "入社日付"]
    got = map_columns(headers, None, load_schema("employee"), settings=settings).targets()
    assert got.get("姓") == "LAST_NAME"
    assert got.get("名") == "FIRST_NAME"
    assert got.get("社員番号") == "EMPLOYEE_ID"
    assert got.get("入社日付") == "HIRING_DATE"
    assert len(set(got.values())) == len(got)  # one column per field


def test_an_employee_file_of_cjk_labels_is_inferred_as_employees(settings):
    from snapmap_pipeline.core.infer import infer_entity
    from snapmap_pipeline.core.schema import load_all

    headers = ["社員番号", "姓", "名", "メール", "部署", "入社日付", "役職"]
    guess = infer_entity(headers, None, "export.csv", load_all(), settings=settings)
    assert guess.entity == "employee"
