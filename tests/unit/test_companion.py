"""Companion sheets and XML-only values (core/companion.py): what Eightfold's XSDs need beyond the MAIN
columns. Each rule has a failing and a passing case; every companion row and every MAIN row is accounted
for; the XML is checked against Eightfold's own XSD."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from lxml import etree
from pydantic import ValidationError

from snapmap_pipeline.core.companion import aggregate, companion_for_name, read_companion
from snapmap_pipeline.core.export.xml import validate_xml
from snapmap_pipeline.core.mapping.overrides import load_overrides
from snapmap_pipeline.core.pipeline import ProcessReport, process_bytes
from snapmap_pipeline.core.schema import CompanionSpec, load_schema
from snapmap_pipeline.errors import ConfigError, InputError, UnknownEntityError
from snapmap_pipeline.settings import Settings, get_settings

ROLE_MAIN = "EXTERNAL_ID,TITLE\nR1,Developer\nR2,Manager\nR3,Designer\n"


def _csv(text: str) -> bytes:
    return text.encode("utf-8")


def _settings(tmp_path: Path, tenant_yaml: str | None = None) -> Settings:
    """The project's config, plus (optionally) a tenant file `t.yaml` with the given content."""
    settings = get_settings()
    config = tmp_path / "config"
    if not config.exists():
        shutil.copytree(settings.config_dir, config)
    if tenant_yaml is not None:
        (config / "tenants" / "t.yaml").write_text(tenant_yaml, encoding="utf-8")
    return settings.model_copy(update={"config_dir": config})


def _process(data: bytes, name: str, tmp_path: Path, **kw) -> ProcessReport:
    report = process_bytes(data, name, out_dir=tmp_path / "out", quality=False, **kw)
    assert report.rows_valid + report.rows_quarantined == report.rows_in
    return report


def _quarantine(tmp_path: Path, name: str = "quarantine.csv") -> pl.DataFrame:
    return pl.read_csv(tmp_path / "out" / name, infer_schema=False)


def _eightfold_valid(report: ProcessReport, reference: Path, operation: str = "ingest") -> None:
    schema = load_schema(report.entity)
    xsd = reference / "xsd" / schema.operation(operation).xsd
    assert validate_xml(Path(report.outputs["xml"]), xsd) == []
    assert report.outputs["xsd_errors"] == []  # our own XSD agrees with the writer


# -- naming ---------------------------------------------------------------------------------------------
def test_a_file_is_a_companion_by_its_sheet_name() -> None:
    role = load_schema("role")
    assert companion_for_name(role, "ROLE-ASSOCIATED-TAGS.csv").csv_file == "ROLE-ASSOCIATED-TAGS"
    assert companion_for_name(role, "role_associated_tags_20240101.CSV").csv_file == "ROLE-ASSOCIATED-TAGS"
    assert companion_for_name(role, "ROLE-SKILLS-LIST").csv_file == "ROLE-SKILLS-LIST"
    assert companion_for_name(role, "ROLE-MAIN.csv") is None
    assert companion_for_name(role, "Associated Tags", sheet=True).csv_file == "ROLE-ASSOCIATED-TAGS"
    assert companion_for_name(role, "associated_tags.csv") is None  # a dropped file keeps its prefix
    assert companion_for_name(role, "ROLE-ASSOCIATED-TAGSX.csv") is None
    assert companion_for_name(load_schema("employee"), "ROLE-ASSOCIATED-TAGS.csv") is None


def test_an_unknown_companion_or_one_without_its_key_column_is_refused() -> None:
    role = load_schema("role")
    with pytest.raises(InputError) as err:
        read_companion(_csv("EXTERNAL_ID,PATH\nR1,X\n"), "ROLE-CAREER-PATHS.csv", role)
    assert err.value.code == "unknown_companion" and "ROLE-ASSOCIATED-TAGS" in err.value.message
    with pytest.raises(InputError) as err:
        read_companion(_csv("ROLE,JOB_CODE\nR1,X\n"), "ROLE-ASSOCIATED-TAGS.csv", role)
    assert err.value.code == "companion_key_missing" and "EXTERNAL_ID" in err.value.message


def test_companion_columns_match_by_spec_name_or_alias_and_the_rest_is_reported() -> None:
    plan = load_schema("succession_plan")
    data = _csv("plan id,Incumbent Employee Id,incumbent email,Badge\n1,E1,a@x.com,red\n")
    inp = read_companion(data, "SUCCESSION-PLAN-INCUMBENT-LIST.csv", plan)
    assert inp.mapped.columns == [
        "_row",
        "PLAN_ID",
        "INCUMBENT_EMPLOYEE_ID",
        "INCUMBENT_FULL_NAME",
        "INCUMBENT_EMAIL",
    ]
    assert inp.mapped.row(0) == (2, "1", "E1", None, "a@x.com")
    assert inp.unmapped == ["Badge"]


# -- aggregation ------------------------------------------------------------------------------------------
def test_items_key_collects_each_records_values_into_one_item() -> None:
    spec = load_schema("role").companion("ROLE-ASSOCIATED-TAGS")
    rows = pl.DataFrame(
        {"_row": [2, 3, 4, 5], "EXTERNAL_ID": ["R2", "R1", "R1", "R1"], "JOB_CODE": ["B", "A", "C", "A"]}
    )
    out = aggregate(rows, spec)
    items = dict(zip(out["EXTERNAL_ID"].to_list(), out[spec.csv_file].to_list(), strict=True))
    assert items == {"R2": [{"JOB_CODE": ["B"]}], "R1": [{"JOB_CODE": ["A", "C"]}]}


def test_items_row_keeps_one_item_per_row_in_row_order_and_splits_list_cells() -> None:
    spec = load_schema("role").companion("ROLE-SKILLS-LIST")
    rows = pl.DataFrame(
        {
            "_row": [3, 2],
            "EXTERNAL_ID": ["R1", "R1"],
            "SKILL": ["Go", "SQL"],
            "DATA_SOURCE": [None, "hr"],
            "PROFICIENCY": [None, None],
            "SKILL_GROUP_LIST": ["Eng, , Data", None],
        }
    )
    [items] = aggregate(rows, spec)[spec.csv_file].to_list()
    assert [i["SKILL"] for i in items] == ["SQL", "Go"]
    assert items[1]["SKILL_GROUP_LIST"] == ["Eng", "Data"]


# -- role: associated tags --------------------------------------------------------------------------------
def test_role_tags_attach_and_every_companion_row_is_accounted_for(
    tmp_path: Path, reference: Path, artifacts: Path
) -> None:
    main = ROLE_MAIN + "R4,\n"  # R4 has no title: quarantined by the MAIN contract
    tags = "EXTERNAL_ID,JOB_CODE\nR1,DEV\nR1,D&V<2>\nR2,MAN\nR3,\nR4,DES\nR9,ORPH\n"
    report = _process(
        _csv(main),
        "ROLE-MAIN.csv",
        tmp_path,
        entity="role",
        companions={"ROLE-ASSOCIATED-TAGS.csv": _csv(tags)},
    )
    sheet = report.outputs["companions"]["sheets"]["ROLE-ASSOCIATED-TAGS"]
    assert sheet["rows_in"] == 6
    assert sheet["attached"] + sheet["quarantined"] == sheet["rows_in"]
    assert sheet["attached"] == 3 and sheet["records"] == 2
    q = _quarantine(tmp_path, "quarantine-ROLE-ASSOCIATED-TAGS.csv")
    by_row = dict(zip(q["_row"].to_list(), q["_rule"].to_list(), strict=True))
    assert by_row == {"5": "required", "6": "main_quarantined", "7": "orphan_companion"}
    assert q.columns[:2] == ["EXTERNAL_ID", "JOB_CODE"]  # the companion's own source columns
    # R3's only tag was blank, so R3 has no tag and cannot be valid XML; R4 failed on its own.
    main_q = _quarantine(tmp_path)
    rules = dict(zip(main_q["EXTERNAL_ID"].to_list(), main_q["_rule"].to_list(), strict=True))
    assert rules == {"R3": "missing_companion", "R4": "required"}
    assert "ROLE-ASSOCIATED-TAGS" in main_q.filter(pl.col("EXTERNAL_ID") == "R3")["_message"][0]
    assert report.rows_valid == 2
    xml = Path(report.outputs["xml"]).read_text(encoding="utf-8")
    assert "<tag_value>DEV</tag_value><tag_value>D&amp;V&lt;2&gt;</tag_value>" in xml
    assert xml.count("<associated_tags>") == 2
    _eightfold_valid(report, reference)
    exported = pl.read_csv(tmp_path / "out" / "ROLE-ASSOCIATED-TAGS.csv", infer_schema=False)
    assert exported.columns == ["EXTERNAL_ID", "JOB_CODE"] and exported.height == 3


def test_role_without_tags_is_quarantined_for_ingest_and_update_not_delete(
    tmp_path: Path, reference: Path, artifacts: Path
) -> None:
    for op in ("ingest", "update"):
        report = _process(_csv(ROLE_MAIN), "ROLE-MAIN.csv", tmp_path / op, entity="role", operation=op)
        assert report.rows_valid == 0 and report.rows_quarantined == 3
        assert set(pl.read_csv(tmp_path / op / "out" / "quarantine.csv")["_rule"]) == {"missing_companion"}
    report = _process(
        _csv("EXTERNAL_ID\nR1\n"), "ROLE-MAIN.csv", tmp_path / "d", entity="role", operation="delete"
    )
    assert report.rows_valid == 1
    _eightfold_valid(report, reference, "delete")


def test_companion_sheets_in_the_workbook_are_attached(
    tmp_path: Path, reference: Path, artifacts: Path
) -> None:
    wb = openpyxl.Workbook()
    main = wb.active
    main.title = "ROLE-MAIN"
    for row in [["EXTERNAL_ID", "TITLE"], ["R1", "Developer"], ["R2", "Manager"]]:
        main.append(row)
    tags = wb.create_sheet("ROLE-ASSOCIATED-TAGS")
    for row in [["EXTERNAL_ID", "JOB_CODE"], ["R1", "DEV"], ["R2", "MAN"]]:
        tags.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    report = _process(buf.getvalue(), "roles.xlsx", tmp_path, entity="role")
    assert report.rows_valid == 2
    assert report.outputs["companions"]["sheets"]["ROLE-ASSOCIATED-TAGS"]["attached"] == 2
    _eightfold_valid(report, reference)


# -- role: display tags, education, experience ---------------------------------------------------------------
ROLE_TAGS = "EXTERNAL_ID,JOB_CODE\nR1,DEV\nR2,MAN\nR3,DES\n"


def _role(tmp_path: Path, files: dict[str, str], operation: str = "ingest") -> ProcessReport:
    companions = {"ROLE-ASSOCIATED-TAGS.csv": _csv(ROLE_TAGS), **{k: _csv(v) for k, v in files.items()}}
    return _process(
        _csv(ROLE_MAIN), "ROLE-MAIN.csv", tmp_path, entity="role", operation=operation, companions=companions
    )


def _records(report: ProcessReport, key: str) -> dict[str, etree._Element]:
    root = etree.parse(report.outputs["xml"]).getroot()
    return {r.findtext(key): r for r in root}


def _texts(record: etree._Element, path: str) -> list[str]:
    return [e.text or "" for e in record.iterfind(path)]


def _sheet_rules(tmp_path: Path, sheet: str) -> dict[str, str]:
    q = _quarantine(tmp_path, f"quarantine-{sheet}.csv")
    assert q["_message"].null_count() == 0  # every quarantined row says why
    return dict(zip(q["_row"].to_list(), q["_rule"].to_list(), strict=True))


def test_role_display_tags_are_the_sheets_columns_named_as_given(
    tmp_path: Path, reference: Path, artifacts: Path
) -> None:
    # A blank header names no tag; a record's rows are collected per column; blank cells give no value.
    tags = (
        "EXTERNAL_ID,JobFunction,BUSINESSUNIT,\n"
        "R1,Engineering,Unit1,x\nR1,Research,,\nR2,,Unit2,\nR9,Ghost,,\n,Orphan,,\n"
    )
    for op in ("ingest", "update"):
        report = _role(tmp_path / op, {"ROLE-DISPLAY-TAGS.csv": tags}, op)
        assert report.rows_valid == 3
        sheet = report.outputs["companions"]["sheets"]["ROLE-DISPLAY-TAGS"]
        assert (sheet["rows_in"], sheet["attached"], sheet["quarantined"]) == (5, 3, 2)
        assert sheet["unmapped_columns"] == ["col_4"]
        assert _sheet_rules(tmp_path / op, "ROLE-DISPLAY-TAGS") == {"5": "orphan_companion", "6": "required"}
        records = _records(report, "external_id")
        r1 = records["R1"].findall("display_tags/tag")
        assert [t.findtext("tag_name") for t in r1] == ["JobFunction", "BUSINESSUNIT"]
        assert [_texts(t, "tag_values/tag_value") for t in r1] == [["Engineering", "Research"], ["Unit1"]]
        assert {t.findtext("is_custom") for t in r1} == {"0"}
        assert [t.findtext("tag_name") for t in records["R2"].findall("display_tags/tag")] == ["BUSINESSUNIT"]
        assert records["R3"].find("display_tags") is None
        _eightfold_valid(report, reference, op)
    exported = pl.read_csv(tmp_path / "update" / "out" / "ROLE-DISPLAY-TAGS.csv", infer_schema=False)
    assert exported.columns == ["EXTERNAL_ID", "JobFunction", "BUSINESSUNIT"] and exported.height == 3


ROLE_EDUCATION = (
    "EXTERNAL_ID,SCHOOLS,GRADUATION_START_YEAR,GRADUATION_END_YEAR,DEGREE_LIST,CERTIFICATIONS_LIST,"
    "DEGREE_MAJORS_LIST\n"
    'R1,"MIT, Stanford",2015,2019,BSc,"C1,C2",\n'
    'R1,"Stanford,ETH",2015.0,,MSc,,Physics\n'
    "R2,Oxford,15,,,,\n"
    "R3,Yale,2001,2005,,,\n"
    "R3,,2002,,,,\n"
)
ROLE_EXPERIENCE = (
    "EXTERNAL_ID,JOB_TITLES,COMPANIES,TYPE_OF_EXPERIENCE,PREFERRED_MIN_EXPERIENCE,PREFERRED_MAX_EXPERIENCE,"
    "SENIORITIES_LIST\n"
    'R1,"SDE, SWE",Acme,Total,2,5,"Senior,Lead"\n'
    "R2,,,lifetime,,,\n"
    "R3,,,,-1,,\n"
)


def test_role_education_and_experience_make_one_element_per_role(
    tmp_path: Path, reference: Path, artifacts: Path
) -> None:
    files = {"ROLE-EDUCATION.csv": ROLE_EDUCATION, "ROLE-EXPERIENCE.csv": ROLE_EXPERIENCE}
    for op in ("ingest", "update"):
        report = _role(tmp_path / op, files, op)
        assert report.rows_valid == 3  # companion rows never quarantine their role
        sheets = report.outputs["companions"]["sheets"]
        assert (sheets["ROLE-EDUCATION"]["attached"], sheets["ROLE-EDUCATION"]["quarantined"]) == (2, 3)
        assert (sheets["ROLE-EXPERIENCE"]["attached"], sheets["ROLE-EXPERIENCE"]["quarantined"]) == (1, 2)
        # R2's year is not four digits; R3's two rows disagree on the start year, which is one per role.
        education = _sheet_rules(tmp_path / op, "ROLE-EDUCATION")
        assert education == {"4": "range", "5": "conflicting_values", "6": "conflicting_values"}
        assert _sheet_rules(tmp_path / op, "ROLE-EXPERIENCE") == {"3": "enum", "4": "range"}
        records = _records(report, "external_id")
        [edu] = records["R1"].findall("education")
        pvt = edu.findall("schools/preference_value_type")
        assert [p.findtext("value") for p in pvt] == ["MIT", "Stanford", "ETH"]
        assert {p.findtext("preference_type") for p in pvt} == {"Preferred"}
        assert [c.tag for c in pvt[0]] == ["preference_type", "value"]  # the XSD's sequence
        assert edu.findtext("graduation_year/graduation_start_year") == "2015"  # 2015.0 is the same year
        assert edu.findtext("graduation_year/graduation_end_year") == "2019"
        assert _texts(edu, "degrees_list/degree") == ["BSc", "MSc"]
        assert _texts(edu, "certifications_list/certification_id") == ["C1", "C2"]
        assert _texts(edu, "degree_majors_list/degree_major") == ["Physics"]
        [exp] = records["R1"].findall("experience")
        assert _texts(exp, "job_titles/preference_value_type/value") == ["SDE", "SWE"]
        assert _texts(exp, "companies/preference_value_type/preference_type") == ["Preferred"]
        years = exp.find("preferred_years_of_experience")
        assert [(c.tag, c.text) for c in years] == [
            ("type_of_experience", "total"),  # the spec's spelling
            ("min_experience", "2"),
            ("max_experience", "5"),
        ]
        assert _texts(exp, "seniorities_list/seniority") == ["Senior", "Lead"]
        for key in ("R2", "R3"):
            assert records[key].find("education") is None and records[key].find("experience") is None
        _eightfold_valid(report, reference, op)


def test_a_companion_row_with_nothing_but_its_key_writes_nothing(
    tmp_path: Path, reference: Path, artifacts: Path
) -> None:
    report = _role(tmp_path, {"ROLE-EDUCATION.csv": "EXTERNAL_ID,SCHOOLS,GRADUATION_START_YEAR\nR1,,\n"})
    sheet = report.outputs["companions"]["sheets"]["ROLE-EDUCATION"]
    assert (sheet["attached"], sheet["quarantined"]) == (1, 0)
    assert "<education" not in Path(report.outputs["xml"]).read_text(encoding="utf-8")
    _eightfold_valid(report, reference)


# -- demand: preferred skills -------------------------------------------------------------------------------
def test_demand_preferred_skills_give_one_skill_detail_per_listed_skill(
    tmp_path: Path, reference: Path, artifacts: Path
) -> None:
    main = (reference / "csv_samples" / "demand" / "DEMAND-MAIN-sample.csv").read_bytes()
    skills = (
        "DEMAND_ID,PREFERRED_SKILLS,PROFICIENCY,SKILL_GROUP_NAME,DATA_SOURCE\n"
        '19729558,"Python, Java",high,"tech, core",linkedin\n'
        "19729558,SQL,,,\n"
        "19729559,,medium,,\n"
        '19729559," , ",,,\n'
        "19729560,Go,,,\n"  # its demand is quarantined (ROLE_ASSOCIATION_MODE invalid_mode)
    )
    for op in ("ingest", "update"):
        report = _process(
            main,
            "DEMAND-MAIN.csv",
            tmp_path / op,
            entity="demand",
            operation=op,
            companions={"DEMAND-PREFERRED-SKILLS.csv": _csv(skills)},
        )
        sheet = report.outputs["companions"]["sheets"]["DEMAND-PREFERRED-SKILLS"]
        assert (sheet["rows_in"], sheet["attached"], sheet["quarantined"]) == (5, 2, 3)
        rules = _sheet_rules(tmp_path / op, "DEMAND-PREFERRED-SKILLS")
        assert rules == {"4": "required", "5": "required", "6": "main_quarantined"}
        records = _records(report, "job_id")
        details = records["19729558"].findall("skills_list/skill_detail")
        assert [d.findtext("skill") for d in details] == ["Python", "Java", "SQL"]
        assert [d.findtext("proficiency") for d in details] == ["high", "high", None]
        assert [_texts(d, "skill_group_list/skill_group/skill_group_name") for d in details] == [
            ["tech", "core"],
            ["tech", "core"],
            [],
        ]
        assert [d.findtext("data_source") for d in details] == ["linkedin", "linkedin", None]
        assert records["19729559"].find("skills_list") is None
        _eightfold_valid(report, reference, op)


# -- succession plan: incumbents required for ingest only -------------------------------------------------
def test_succession_plan_needs_incumbents_for_ingest_but_not_for_update(
    tmp_path: Path, reference: Path, artifacts: Path
) -> None:
    main = _csv("PLAN_ID,PLAN_DATE\n1,2024-07-31\n2,2024-08-01\n")
    incumbents = _csv(
        "PLAN_ID,INCUMBENT_EMPLOYEE_ID,INCUMBENT_FULL_NAME,INCUMBENT_EMAIL\n1,1001,Ann,ann@x.com\n"
    )
    successors = _csv(
        "PLAN_ID,USER_ID,FULL_NAME,EMAIL,READINESS,RANK,COMMENTS\n1,7,Bo,bo@x.com,Ready,1.0,ok\n1,8,Cy,cy@x.com,,x,\n"
    )
    files = {
        "SUCCESSION-PLAN-INCUMBENT-LIST.csv": incumbents,
        "SUCCESSION-PLAN-SUCCESSOR-LIST.csv": successors,
    }
    report = _process(
        main, "SUCCESSION-PLAN-MAIN.csv", tmp_path / "i", entity="succession_plan", companions=files
    )
    assert report.rows_valid == 1  # plan 2 has no incumbent
    q = pl.read_csv(tmp_path / "i" / "out" / "quarantine.csv", infer_schema=False)
    assert q["_rule"].to_list() == ["missing_companion"]
    succ = pl.read_csv(
        tmp_path / "i" / "out" / "quarantine-SUCCESSION-PLAN-SUCCESSOR-LIST.csv", infer_schema=False
    )
    assert succ["_rule"].to_list() == ["integer"]  # RANK 'x'; '1.0' is read as 1
    xml = Path(report.outputs["xml"]).read_text(encoding="utf-8")
    assert (
        "<incumbent><user_id>1001</user_id><full_name>Ann</full_name><email>ann@x.com</email></incumbent>"
        in xml
    )
    assert "<rank>1</rank>" in xml
    _eightfold_valid(report, reference)

    report = _process(
        main, "SUCCESSION-PLAN-MAIN.csv", tmp_path / "u", entity="succession_plan", operation="update"
    )
    assert report.rows_valid == 2
    _eightfold_valid(report, reference, "update")


# -- demand: IS_OPEN derived --------------------------------------------------------------------------------
DEMAND = (
    "DEMAND_ID,TITLE,DEMAND_DESCRIPTION,CREATION_TS,LAST_MODIFIED_TS,NUMBER_OF_OPENINGS,DEMAND_STATUS\n"
    "D1,Analyst,Desc,2024-01-01T10:00:00,2024-01-02T10:00:00,2,Active\n"
    "D2,Analyst,Desc,2024-01-01T10:00:00,2024-01-02T10:00:00,2,Filled\n"
    "D3,Analyst,Desc,2024-01-01T10:00:00,2024-01-02T10:00:00,2,\n"
    "D4,Analyst,Desc,2024-01-01T10:00:00,2024-01-02T10:00:00,2,Limbo\n"
)


def _is_open(report: ProcessReport) -> dict[str, str]:
    text = Path(report.outputs["xml"]).read_text(encoding="utf-8")
    records = text.split("<EF_Demand>")[1:]
    return {r.split("<job_id>")[1].split("<")[0]: r.split("<is_open>")[1].split("<")[0] for r in records}


def test_demand_is_open_comes_from_the_status_else_the_tenant_default(
    tmp_path: Path, reference: Path, artifacts: Path
) -> None:
    report = _process(_csv(DEMAND), "DEMAND-MAIN.csv", tmp_path / "a", entity="demand")
    assert _is_open(report) == {"D1": "true", "D2": "false", "D3": "true"}  # D3: blank status, default true
    assert report.transform["derived"]["IS_OPEN"] == 4
    q = pl.read_csv(tmp_path / "a" / "out" / "quarantine.csv", infer_schema=False)
    assert q["_rule"].to_list() == ["boolean"] and q["DEMAND_ID"].to_list() == ["D4"]  # unknown status
    _eightfold_valid(report, reference)

    settings = _settings(tmp_path, "parameters:\n  demand_is_open: false\n  group_id: acme.com\n")
    report = _process(
        _csv(DEMAND), "DEMAND-MAIN.csv", tmp_path / "b", entity="demand", tenant="t", settings=settings
    )
    assert _is_open(report) == {"D1": "true", "D2": "false", "D3": "false"}
    assert Path(report.outputs["xml"]).read_text(encoding="utf-8").count("<group_id>acme.com</group_id>") == 3
    _eightfold_valid(report, reference)


# -- planned_event: GROUP_ID from the tenant ---------------------------------------------------------------
EVENTS = (
    "EXT_EVENT_ID,NAME,EVENT_TYPE,START_TIMESTAMP,END_TIMESTAMP,DESCRIPTION,SELECTED_TIMEZONE,EVENT_LOCATION_TYPE\n"
    "E1,Fair,OPEN,2024-01-01T10:00:00,2024-01-01T12:00:00,d,Asia/Calcutta,in_person\n"
    "E2,Drive,OPEN,2024-02-01T10:00:00,2024-02-01T12:00:00,d,Asia/Calcutta,virtual_event\n"
)


def test_planned_events_without_a_group_id_are_quarantined_naming_the_tenant_key(
    tmp_path: Path, artifacts: Path
) -> None:
    report = _process(_csv(EVENTS), "PLANNED-EVENT-MAIN.csv", tmp_path, entity="planned_event")
    assert report.rows_valid == 0 and report.rows_quarantined == 2
    q = _quarantine(tmp_path)
    assert set(q["_rule"]) == {"missing_tenant_value"}
    assert "parameters: {group_id: ...}" in q["_message"][0]
    assert any(i["rule"] == "missing_tenant_value" and i["column"] == "GROUP_ID" for i in report.issues)


def test_planned_events_get_the_tenants_group_id(tmp_path: Path, reference: Path, artifacts: Path) -> None:
    settings = _settings(tmp_path, "parameters:\n  group_id: acme.com\n")
    for op in ("ingest", "upsert"):
        report = _process(
            _csv(EVENTS),
            "PLANNED-EVENT-MAIN.csv",
            tmp_path / op,
            entity="planned_event",
            tenant="t",
            settings=settings,
            operation=op,
        )
        assert report.rows_valid == 2
        assert (
            Path(report.outputs["xml"]).read_text(encoding="utf-8").count("<group_id>acme.com</group_id>")
            == 2
        )
        assert report.transform["derived"]["GROUP_ID"] == 2
        _eightfold_valid(report, reference, op)


def test_a_group_id_with_spaces_is_refused(tmp_path: Path, artifacts: Path) -> None:
    settings = _settings(tmp_path, "parameters:\n  group_id: acme com\n")
    report = _process(
        _csv(EVENTS),
        "PLANNED-EVENT-MAIN.csv",
        tmp_path,
        entity="planned_event",
        tenant="t",
        settings=settings,
    )
    assert report.rows_valid == 0
    assert set(_quarantine(tmp_path)["_rule"]) == {"no_whitespace"}


# -- tenant parameters ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    ["parameters: [group_id]\n", "parameters:\n  Group-Id: x\n", "parameters:\n  group_id: [a, b]\n"],
)
def test_bad_tenant_parameters_are_a_config_error(content: str, tmp_path: Path) -> None:
    settings = _settings(tmp_path, content)
    with pytest.raises(ConfigError) as err:
        load_overrides("t", settings)
    assert "parameter" in err.value.message


def test_tenant_parameters_are_read(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "parameters:\n  group_id: acme.com\n  demand_is_open: false\n")
    assert load_overrides("t", settings).parameters == {"group_id": "acme.com", "demand_is_open": False}


# -- upsert where Eightfold cannot say it -------------------------------------------------------------------
@pytest.mark.parametrize("entity", ["certificate", "offer"])
def test_upsert_is_refused_before_anything_is_written(entity: str, tmp_path: Path, artifacts: Path) -> None:
    schema = load_schema(entity)
    data = _csv(f"{schema.key}\nX1\n")
    with pytest.raises(UnknownEntityError) as err:
        process_bytes(
            data, f"{schema.csv_file}.csv", out_dir=tmp_path / "out", entity=entity, operation="upsert"
        )
    assert err.value.code == "unsupported_operation" and err.value.exit_code == 2
    assert "update" in err.value.message
    assert not (tmp_path / "out").exists()


# -- the schema model ---------------------------------------------------------------------------------
def test_a_companion_field_is_a_column_or_a_constant_never_both() -> None:
    base = {"csv_file": "X-TAGS", "key": "ID", "xml": "tags/tag", "operations": ["ingest"]}
    with pytest.raises(ValidationError):
        CompanionSpec(**base, fields=[{"name": "A", "value": "v", "xml": "a"}])
    with pytest.raises(ValidationError):  # a bare element is one item per record: items: key only
        CompanionSpec(**{**base, "xml": "tag"}, fields=[{"name": "A", "xml": "a"}])
    with pytest.raises(ValidationError):  # items: column needs a header field and a values field
        CompanionSpec(**base, items="column", fields=[{"name": "A", "xml": "a/v", "xml_repeat": "v"}])
    with pytest.raises(ValidationError):  # a repeated element repeats once per value of ONE column
        CompanionSpec(
            **base,
            fields=[
                {"name": "A", "xml": "l/p/a", "xml_repeat": "p"},
                {"name": "B", "xml": "l/p/b", "xml_repeat": "p"},
            ],
        )
    with pytest.raises(ValidationError):  # one item per value (each) is for items: row
        CompanionSpec(**base, items="key", fields=[{"name": "A", "xml": "a", "each": True}])
    with pytest.raises(ValidationError):
        CompanionSpec(**base, fields=[{"name": "A", "xml": "a"}], required_for=["update"])
    ok = CompanionSpec(**base, fields=[{"name": "A", "xml": "a"}, {"xml": "b", "value": "false"}])
    assert ok.columns == ["A"] and ok.container == ["tags"] and ok.element == "tag"


def test_the_cli_takes_companion_files(tmp_path: Path, artifacts: Path) -> None:
    from typer.testing import CliRunner

    from snapmap_pipeline.cli import app

    main, tags = tmp_path / "ROLE-MAIN.csv", tmp_path / "ROLE-ASSOCIATED-TAGS.csv"
    main.write_text(ROLE_MAIN, encoding="utf-8")
    tags.write_text("EXTERNAL_ID,JOB_CODE\nR1,A\nR2,B\nR3,C\n", encoding="utf-8")
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["process", str(main), "--companion", str(tags), "--out", str(out), "--entity", "role", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "ROLE-MAIN" / "report.json").read_text())
    assert report["rows_valid"] == 3
    assert report["outputs"]["companions"]["sheets"]["ROLE-ASSOCIATED-TAGS"]["attached"] == 3


# -- the declared companions against Eightfold's own spec and XSDs ------------------------------------------
def _declared() -> list:
    from snapmap_pipeline.core.schema import load_all

    return [
        pytest.param(e, c.csv_file, id=f"{e}-{c.csv_file}")
        for e, s in load_all().items()
        for c in s.companions
    ]


@pytest.mark.parametrize(("entity", "sheet"), _declared())
def test_companion_columns_and_xml_paths_follow_eightfold(entity: str, sheet: str, reference: Path) -> None:
    from tests.unit.test_schemas import load_xsd, parse_spec

    schema = load_schema(entity)
    spec = schema.companion(sheet)
    books = parse_spec((reference / "csv_spec.txt").read_text(encoding="utf-8"))
    sheet_columns = books[f"ef_{entity}_add_csv_schema.xlsx"][sheet]
    if spec.items == "column":  # the columns are the tenant's; the spec lists examples after the key
        assert sheet_columns[0].name == spec.key
    else:
        assert [c.name for c in sheet_columns] == [spec.key, *spec.columns]  # the spec's sheet, in order
    spec_required = {c.name for c in sheet_columns if c.required}
    for op in ("ingest", "update"):
        if op not in spec.operations:
            continue
        xsd = load_xsd(reference / "xsd" / schema.operations[op].xsd)
        record = xsd.record_type(schema.xml.root, schema.xml.record)
        for f in spec.fields:
            chain = xsd.resolve(record, f"{spec.xml}/{f.xml}")
            assert not isinstance(chain, str), f"{op} {f.xml}: {chain}"
            if f.required:  # required by the XSD, or by the spec's sheet
                assert chain[-1].min_occurs != "0" or f.name in spec_required, f.xml
            elif f.value is None and f.xml_repeat is None:
                assert chain[-1].min_occurs == "0", f"{f.xml}: the XSD requires it; mark it required"
        required = op in spec.required_for
        container = xsd.resolve(record, (spec.container or [spec.element])[0])
        assert (container[0].min_occurs != "0") == required, f"{op}: required_for disagrees with the XSD"
