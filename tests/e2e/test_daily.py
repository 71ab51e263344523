"""The daily feed over three days (a hire, a change, a leaver): ingest, update and delete XML, each valid
against Eightfold's own XSD for that operation; a 3-day backfill after the fact gives the same feeds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster_support import workday
from lxml import etree

from snapmap_pipeline.run_local import process_drops

pytestmark = pytest.mark.e2e

ANN = ("2001", "Ann", "Lee", "ann.lee@acme-corp.com", "Analyst", "2020-01-06")
BOB = ("2002", "Bob", "Ray", "bob.ray@acme-corp.com", "Engineer", "2021-02-01")
CY = ("2003", "Cy", "Ng", "cy.ng@acme-corp.com", "Designer", "2024-05-02")
BOB_PROMOTED = BOB[:4] + ("Senior Engineer",) + BOB[5:]
DAYS = {  # day → that day's full export
    "2024-05-01": workday(ANN, BOB),
    "2024-05-02": workday(ANN, BOB_PROMOTED, CY),  # Cy hired, Bob promoted
    "2024-05-03": workday(BOB_PROMOTED, CY),  # Ann left
}
EXPECTED = {
    "2024-05-01": {"ingest": {"2001", "2002"}},
    "2024-05-02": {"ingest": {"2003"}, "update": {"2002"}},
    "2024-05-03": {"delete": {"2001"}},
}
XSD = {
    "ingest": "ef_employee_list.xsd",
    "update": "ef_employee_update.xsd",
    "delete": "ef_employee_delete.xsd",
}


def run_day(env, day: str) -> dg.ExecuteInProcessResult:
    job = env.defs.resolve_job_def("daily_feed")
    key = dg.MultiPartitionKey({"date": day, "feed": "acme.employee"})
    result = job.execute_in_process(instance=env.instance, partition_key=key, raise_on_error=False)
    assert result.success
    return result


def feeds_of(env, reference: Path) -> dict[str, dict[str, set[str]]]:
    """Per day and operation, the employee ids in the written XML, each file checked against the XSD."""
    out: dict[str, dict[str, set[str]]] = {}
    for day in DAYS:
        folder = env.artifacts / "daily" / "acme.employee" / day
        for op, xsd_name in XSD.items():
            path = folder / f"employee-{op}.xml"
            if not path.exists():
                continue
            schema = etree.XMLSchema(etree.parse(str(reference / "xsd" / xsd_name)))
            doc = etree.parse(str(path))
            assert schema.validate(doc), (op, day, str(schema.error_log)[:500])
            out.setdefault(day, {})[op] = {e.text for e in doc.iter("employee_id")}
    return out


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)


def test_three_days_hire_change_leaver(dagster_env, reference):
    for day, content in DAYS.items():
        dagster_env.drop(f"acme/workers_{day}.csv", content, at=at(day))
        assert all(o.success for o in process_drops(dagster_env.instance, dagster_env.defs))
        run_day(dagster_env, day)
    assert feeds_of(dagster_env, reference) == EXPECTED


def test_backfill_after_the_fact_gives_the_same(dagster_env, reference):
    for day, content in DAYS.items():
        dagster_env.drop(f"acme/workers_{day}.csv", content, at=at(day))
    outs = process_drops(dagster_env.instance, dagster_env.defs)
    assert len(outs) == 3 and all(o.success for o in outs)
    # the backfill policy runs one partition per run; the day-over-day dependency orders them
    for day in sorted(DAYS):
        run_day(dagster_env, day)
    assert feeds_of(dagster_env, reference) == EXPECTED
