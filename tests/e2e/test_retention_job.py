"""The retention job as Dagster runs it: drops older than the tenant's retention lose their stored
artifacts, frames and drop partition; newer drops keep everything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dagster_support import workday

from snapmap_pipeline.run_local import process_drops

pytestmark = pytest.mark.e2e


def _stored(artifacts, partition: str) -> list[str]:
    return sorted(
        str(p.relative_to(artifacts)) for p in artifacts.rglob("*") if p.is_file() and partition in str(p)
    )


def test_retention_job_purges_expired_drops_and_their_partitions(dagster_env):
    old_rows = workday(("1001", "Maria", "Gonzalez", "maria@acme-corp.com", "Data Engineer", "2019-03-18"))
    new_rows = workday(("2001", "Lea", "Roth", "lea.roth@acme-corp.com", "Designer", "2021-05-03"))
    now = datetime.now(UTC)
    dagster_env.drop("acme/old.csv", old_rows, at=now - timedelta(days=40))
    dagster_env.drop("acme/new.csv", new_rows, at=now - timedelta(days=2))
    (dagster_env.config / "tenants" / "acme.yaml").write_text("retention_days: 30\n")
    outcomes = process_drops(dagster_env.instance, dagster_env.defs)
    assert len(outcomes) == 2 and all(o.success for o in outcomes), outcomes
    old = next(
        o for o in outcomes if "old" in dagster_env.instance.get_run_by_id(o.run_id).tags["snapmap/path"]
    )
    new = next(o for o in outcomes if o is not old)
    assert _stored(dagster_env.artifacts, old.partition) and _stored(dagster_env.artifacts, new.partition)

    job = dagster_env.defs.resolve_job_def("retention")
    result = job.execute_in_process(instance=dagster_env.instance)
    assert result.success
    counts = result.output_for_node("purge_expired")
    assert counts["purged"].get("drop") == 1 and counts["partitions_deleted"] == 1

    partitions = dagster_env.instance.get_dynamic_partitions("drops")
    assert old.partition not in partitions and new.partition in partitions
    assert _stored(dagster_env.artifacts, old.partition) == []  # manifest, raw bytes and frames all gone
    assert _stored(dagster_env.artifacts, new.partition)
