"""Round 8 of the mapping engine: vendor field knowledge (config/glossary/vendors.yaml). Technical field
codes of SAP HCM, PeopleSoft, SuccessFactors, ADP, Dayforce, Dynamics 365 and French DSN exports read as
the plain words they stand for, and codes for data Eightfold has no field for stay unmapped. Headers here
are made up from the vendors' documents, not taken from the labelled splits."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from snapmap_pipeline.core.mapping import map_columns
from snapmap_pipeline.core.mapping.normalize import expanded_text, load_glossary, normalize, sap_field
from snapmap_pipeline.core.schema import load_schema
from snapmap_pipeline.settings import Settings


@pytest.fixture(scope="module")
def glossary():
    return load_glossary(Path(Settings().config_dir) / "glossary")


def _target(entity: str, header: str, settings: Settings) -> str | None:
    return map_columns([header], None, load_schema(entity), settings=settings).items[0].target


def test_sap_table_prefix_is_dropped_before_the_field_code():
    assert sap_field("P0002-GBDAT") == "GBDAT"
    assert sap_field("PA0001_PLSTX") == "PLSTX"
    assert sap_field("hrp1000.stext") == "stext"
    # not a table: no four digits, or nothing after the separator
    assert sap_field("PAY_GROUP") == "PAY_GROUP"
    assert sap_field("P2024") == "P2024"
    assert normalize("PS0001-STLTX") == normalize("STLTX")


def test_vendor_codes_read_as_plain_words(glossary):
    assert expanded_text("GBDAT", glossary) == "birth date"
    assert expanded_text("JOB_ENTRY_DT", glossary) == "role change date"
    assert "cost center" not in expanded_text("STLTX", glossary)
    assert expanded_text("STLTX", glossary) == "job title"


@pytest.mark.parametrize(
    ("entity", "header", "target"),
    [
        # SAP HCM infotype fields and text tables
        ("candidate", "P0002-GBDAT", "DATE_OF_BIRTH"),
        ("candidate", "PB0002-GESCH", "GENDER"),
        ("employee", "GESCH", "GENDER"),
        ("employee", "RUFNM", "PREFERRED_FIRST_NAME"),
        ("employee", "PA0001_STLTX", "TITLE"),
        ("employee", "ORGTX", "BUSINESS_UNIT"),
        ("employee", "CNAME", "FULL_NAME"),
        ("candidate", "APLNO", "CANDIDATE_ID"),
        # PeopleSoft, SuccessFactors, Oracle, ADP, Dayforce, Dynamics 365
        ("employee", "OPRID", "USER_ID"),
        ("employee", "JOB_ENTRY_DT", "ROLE_CHANGE_DATE"),
        ("employee", "companyEntryDate", "HIRING_DATE"),
        ("employee", "REG_TEMP", "EMPLOYEE_TYPE"),
        ("candidate", "HIGHEST_EDUC_LVL", "HIGHEST_EDUCATION_LEVEL"),
        ("employee", "AssignmentCategory", "EMPLOYEE_TYPE"),
        ("employee", "associateOID", "EMPLOYEE_ID"),
        ("employee", "reportsTo/formattedName", "MANAGER_FULLNAME"),
        ("employee", "XRefCode", "EMPLOYEE_ID"),
        ("employee", "mshr_firstname", "FIRST_NAME"),
        ("employee", "Worker/Business_Site_Summary_Data/Name", "LOCATION"),
        ("employee", "Worker/Manager_Reference/@Descriptor", "MANAGER_FULLNAME"),
        ("employee", "Worker/Manager_Reference/ID", "MANAGER_ID"),
        ("employee", "relieving_dt", "TERMINATION_DATE"),
        ("position", "NumberToBeHired", "NUMBER_OF_OPENINGS"),
        ("position", "jobReq.numberOpenings", "NUMBER_OF_OPENINGS"),
        ("position", "JobOrder/numOpenings", "NUMBER_OF_OPENINGS"),
        ("position", "JobOrder/clientCorporation", "COMPANY"),
        # SuccessFactors Learning
        ("course", "CPNT_ID", "COURSE_ID"),
        ("course", "CPNT_TITLE", "COURSE_TITLE"),
        # French DSN words, written apart and run together
        ("employee", "Libellé emploi", "TITLE"),
        ("employee", "DatededébutduContrat", "HIRING_DATE"),
        ("employee", "Date de fin du contrat", "TERMINATION_DATE"),
        # Finnish payroll words (Netvisor)
        ("employee", "Palkansaajan etunimi", "FIRST_NAME"),
        ("employee", "Työntekijän sukupuoli", "GENDER"),
        ("employee", "Työsuhteen alkupäivä", "HIRING_DATE"),
    ],
)
def test_vendor_field_codes_map(entity, header, target, settings):
    assert _target(entity, header, settings) == target


@pytest.mark.parametrize(
    "header",
    [
        "LGART",  # SAP wage type
        "ABKRS",  # SAP payroll area
        "PA0008-TRFAR",  # SAP pay scale type
        "KOKRS",  # SAP controlling area
        "Personnummer",  # Swedish national identity number, not the personnel number
        "CPR-nummer",  # Danish national identity number
        "ICNUM",  # SAP PA0185 identity number
        "Henkilötunnus",  # Finnish national identity number
        "BEGDA",  # validity start of an infotype record, not a hire date
    ],
)
def test_vendor_codes_for_data_without_a_field_stay_unmapped(header, settings):
    assert _target("employee", header, settings) is None


def test_french_joiners_do_not_split_english_words(glossary, settings):
    """`de` / `du` split run-together French headers only; an English word keeps its meaning."""
    assert _target("position", "scheduleTypeCodes", settings) == _target(
        "position", "Schedule Type Code", settings
    )


def test_every_vendor_block_cites_its_document():
    """Each block of vendor codes names the public document it was written from."""
    path = Path(Settings().config_dir) / "glossary" / "vendors.yaml"
    text = path.read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    assert raw["tokens"] and raw["phrases"] and raw["unmapped"]
    # the first line of each block is its header comment; the comment lines under it cite the document
    blocks = text.split("  # -- ")[1:]
    assert len(blocks) >= 8
    for block in blocks:
        comments = [line for line in block.splitlines() if line.lstrip().startswith("#")]
        assert any("https://" in line for line in comments), block[:80]
