"""diff_snapshots: hires are ingested, changes updated, leavers deleted; derived fields never count."""

from __future__ import annotations

import polars as pl
import pytest

from snapmap_pipeline.core.delta import diff_snapshots, latest_per_key
from snapmap_pipeline.core.schema import load_schema
from snapmap_pipeline.errors import InputError


@pytest.fixture(scope="module")
def employee():
    return load_schema("employee")


def people(*rows: tuple[str, str, str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["EMPLOYEE_ID", "FIRST_NAME", "EMAIL", "LAST_ACTIVITY_TS"], orient="row"
    ).with_row_index("_row", offset=2)


def test_hire_change_leaver(employee):
    day1 = people(
        ("1", "Ann", "ann@acme.com", "2024-05-01T00:00:00"),
        ("2", "Bob", "bob@acme.com", "2024-05-01T00:00:00"),
    )
    day2 = people(
        ("1", "Anne", "ann@acme.com", "2024-05-02T00:00:00"),
        ("3", "Cy", "cy@acme.com", "2024-05-02T00:00:00"),
    )
    d = diff_snapshots(day1, day2, employee)
    assert d.ingest["EMPLOYEE_ID"].to_list() == ["3"]
    assert d.update["EMPLOYEE_ID"].to_list() == ["1"]
    assert d.update["FIRST_NAME"].to_list() == ["Anne"]  # the new value goes out
    assert d.delete["EMPLOYEE_ID"].to_list() == ["2"]
    delete_fields = {f.name for f in employee.fields_for("delete")}
    assert set(d.delete.columns) <= delete_fields
    assert not any(c.startswith("_") for f in d.frames().values() for c in f.columns)


def test_derived_timestamp_alone_is_not_a_change(employee):
    day1 = people(("1", "Ann", "ann@acme.com", "2024-05-01T00:00:00"))
    day2 = people(("1", "Ann", "ann@acme.com", "2024-05-02T00:00:00"))
    assert diff_snapshots(day1, day2, employee).counts() == {"ingest": 0, "update": 0, "delete": 0}


def test_null_to_value_is_a_change_and_first_day_is_all_ingest(employee):
    day1 = people(("1", None, "ann@acme.com", "t"))
    day2 = people(("1", "Ann", "ann@acme.com", "t"))
    assert diff_snapshots(day1, day2, employee).update.height == 1
    first = diff_snapshots(None, day2, employee)
    assert first.counts() == {"ingest": 1, "update": 0, "delete": 0}


def test_latest_row_per_key_wins(employee):
    frame = pl.DataFrame(
        {"EMPLOYEE_ID": ["1", "1", None], "FIRST_NAME": ["old", "new", "x"], "_at": ["a", "b", "c"]}
    )
    out = latest_per_key(frame, employee, order_by=["_at"])
    assert out["FIRST_NAME"].to_list() == ["new"]


def test_snapshot_without_key_says_what_to_map(employee):
    with pytest.raises(InputError, match="EMPLOYEE_ID"):
        diff_snapshots(None, pl.DataFrame({"FIRST_NAME": ["a"]}), employee)
