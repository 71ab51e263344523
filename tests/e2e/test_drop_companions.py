"""Companion sheets in the drop flow: a file named like a companion (ROLE-ASSOCIATED-TAGS.csv) is no
drop of its own; the MAIN file of its folder picks it up and its records become valid XML."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from snapmap_pipeline.run_local import process_drops

pytestmark = pytest.mark.e2e

ROLES = "EXTERNAL_ID,TITLE\nR1,Developer\nR2,Manager\nR3,Designer\n"
TAGS = "EXTERNAL_ID,JOB_CODE\nR1,DEV\nR2,MAN\nR2,MGR\nR3,DES\n"
DISPLAY_TAGS = "EXTERNAL_ID,JOBFUNCTION\nR1,Engineering\nR2,Management\n"
EXPERIENCE = 'EXTERNAL_ID,JOB_TITLES,PREFERRED_MIN_EXPERIENCE\nR1,"SDE,SWE",2\nR9,SDE,1\n'


def _checks(instance: dg.DagsterInstance, run_id: str) -> dict[str, bool]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    return {
        r.event_log_entry.dagster_event.event_specific_data.check_name: (
            r.event_log_entry.dagster_event.event_specific_data.passed
        )
        for r in records
    }


def test_a_companion_file_rides_with_the_main_file_of_its_folder(dagster_env) -> None:
    for tenant in ("acme", "bare"):
        (dagster_env.config / "tenants" / f"{tenant}.yaml").write_text("entity: role\n")
    dagster_env.drop("acme/ROLE-MAIN.csv", ROLES)
    dagster_env.drop("acme/ROLE-ASSOCIATED-TAGS.csv", TAGS)
    dagster_env.drop("acme/ROLE-DISPLAY-TAGS.csv", DISPLAY_TAGS)
    dagster_env.drop("acme/ROLE-EXPERIENCE.csv", EXPERIENCE)
    dagster_env.drop("bare/ROLE-MAIN.csv", ROLES + "R4,Tester\n")  # no tags beside it
    outcomes = {o.path: o for o in process_drops(dagster_env.instance, dagster_env.defs)}
    assert set(outcomes) == {"acme/ROLE-MAIN.csv", "bare/ROLE-MAIN.csv"}  # companion files are no drops

    acme = outcomes["acme/ROLE-MAIN.csv"]
    assert acme.success and acme.entity == "role"
    assert (acme.rows_valid, acme.rows_quarantined) == (3, 0)
    xml = Path(acme.outputs["xml"]).read_text(encoding="utf-8")
    assert xml.count("<associated_tags>") == 3
    assert "<tag_value>MAN</tag_value><tag_value>MGR</tag_value>" in xml
    assert xml.count("<display_tags>") == 2 and "<tag_name>JOBFUNCTION</tag_name>" in xml
    assert xml.count("<experience>") == 1 and "<value>SWE</value>" in xml
    assert all(_checks(dagster_env.instance, acme.run_id).values())

    bare = outcomes["bare/ROLE-MAIN.csv"]
    assert (bare.rows_valid, bare.rows_quarantined) == (0, 4)  # Eightfold's XSD needs the tags


def test_a_workbook_carries_its_companion_sheets_through_the_drop_flow(dagster_env) -> None:
    import io

    import openpyxl

    wb = openpyxl.Workbook()
    main = wb.active
    main.title = "Roles"
    for line in ROLES.splitlines():
        main.append(line.split(","))
    tags = wb.create_sheet("Associated Tags")  # named without the entity prefix, inside the workbook
    for line in TAGS.splitlines():
        tags.append(line.split(","))
    buf = io.BytesIO()
    wb.save(buf)
    (dagster_env.config / "tenants" / "acme.yaml").write_text("entity: role\n")
    dagster_env.drop("acme/roles.xlsx", buf.getvalue())
    [outcome] = process_drops(dagster_env.instance, dagster_env.defs)
    assert outcome.success and (outcome.rows_valid, outcome.rows_quarantined) == (3, 0)
    xml = Path(outcome.outputs["xml"]).read_text(encoding="utf-8")
    assert xml.count("<associated_tags>") == 3 and "<tag_value>MGR</tag_value>" in xml
    assert all(_checks(dagster_env.instance, outcome.run_id).values())
