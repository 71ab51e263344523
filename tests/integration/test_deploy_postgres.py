"""The production shape on this machine: deploy/dagster.yaml on a real PostgreSQL, the QueuedRunCoordinator
with a limit of 2, the daemon as a subprocess, drops, artifacts and LanceDB on an S3 server (moto).
20 dropped files go through the S3 drop sensor into queued runs; all succeed, never more than 2 run at
once, and no content runs twice."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import dagster as dg
import pytest

from snapmap_pipeline.defs.drops.assets import EMBEDDING_POOL
from tests.integration.postgres import DaemonDeployment, PostgresServer, deploy_instance_config

pytestmark = pytest.mark.integration

FILES = 20
LIMIT = 2
TENANTS = ("north", "south", "east", "west")
# 20 runs two at a time are ten rounds of a cold run plus two sensor looks 30 s apart. A run took 40-80 s
# here with the 2 cores shared (load average 7-10), so the deadline is generous; the suite's --timeout
# 600 is raised for this test only.
DEADLINE_S = 720
HEADER = "Employee ID,Legal First Name,Legal Last Name,Primary Work Email,Business Title,Hire Date\n"
FIRST = ("Maria", "James", "Aiko", "Lars", "Zoë", "Omar", "Chen", "Ines")
LAST = ("Gonzalez", "Oneil", "Tanaka", "Berg", "Dubois", "Haddad", "Wei", "Ferreira")


def employee_csv(n: int, rows: int = 4) -> bytes:
    """A small Workday-style export; `n` makes every file's bytes (and ids) distinct."""
    lines = [HEADER]
    for i in range(rows):
        first, last = FIRST[(n + i) % len(FIRST)], LAST[(n * 3 + i) % len(LAST)]
        emp = 10_000 + n * 100 + i
        lines.append(
            f"{emp},{first},{last},{first.lower()}.{last.lower()}{emp}@example-corp.com,"
            f"Analyst {i},2021-0{1 + i % 9}-1{n % 10}\n"
        )
    return "".join(lines).encode()


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t opens)."""
    events = sorted(
        [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1])
    )
    best = now = 0
    for _, step in events:  # a sweep over 2×runs events
        now += step
        best = max(best, now)
    return best


@pytest.fixture()
def deployment(postgres_server: PostgresServer, s3_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bucket = s3_server.new_bucket()
    db = postgres_server.create_database(f"dagster_{tmp_path.name.lower().replace('-', '_')[:40]}")
    env = {
        **postgres_server.env(db),
        "SNAPMAP_ENV": "prod",
        "SNAPMAP_ARTIFACTS_ROOT": f"s3://{bucket}/artifacts",
        "SNAPMAP_DROP_BUCKET": bucket,
        "SNAPMAP_DROP_PREFIX": "drops",
        "SNAPMAP_LOG_LEVEL": "WARNING",
        "AWS_ENDPOINT_URL": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_REGION": s3_server.region,
        "AWS_DEFAULT_REGION": s3_server.region,
        "AWS_ALLOW_HTTP": "true",  # LanceDB's object store talks plain HTTP to moto
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "LANCE_LOG": "error",
    }
    # One process per run (in_process executor): what is under test is the storage, the queue and the
    # daemon; per-step processes (bench/many_files.py measures them) would only make each run slower.
    config = deploy_instance_config(max_concurrent_runs=LIMIT, tenant_limit=LIMIT)
    dep = DaemonDeployment(tmp_path / "dagster_home", env, config, executor="in_process")
    # As deploy/dagster.yaml says, a deployment sets its pools' limits: left to the default, the first
    # two runs to claim a slot both create the pool's row, and on PostgreSQL one of them then fails
    # (Dagster's initialize_concurrency_limit_to_default; seen once in CI as InFailedSqlTransaction).
    dep.set_pool_limit(EMBEDDING_POOL, config["concurrency"]["pools"]["default_limit"])
    for key in (
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_PORT",
        "DAGSTER_PG_USER",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_DB",
    ):
        monkeypatch.setenv(key, env[key])  # the test's own instance reads the same dagster.yaml
    instance = dg.DagsterInstance.from_config(str(dep.home))
    try:
        yield dep, instance, bucket
    finally:
        dep.stop()
        instance.dispose()


def test_deploy_dagster_yaml_loads_on_postgres(postgres_server: PostgresServer, tmp_path: Path, monkeypatch):
    """deploy/dagster.yaml as shipped: Dagster accepts it and it reaches a real PostgreSQL (seconds)."""
    import yaml

    from tests.integration.postgres import DEPLOY_YAML

    shipped = yaml.safe_load(DEPLOY_YAML.read_text())
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DEPLOY_YAML.read_text())
    for key, value in postgres_server.env(postgres_server.create_database("dagster_yaml_check")).items():
        monkeypatch.setenv(key, value)
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert type(instance.run_storage).__module__.startswith("dagster_postgres")
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == shipped["concurrency"]["runs"]["max_concurrent_runs"]
        assert {t["key"] for t in queue.tag_concurrency_limits} == {"snapmap/tenant", "dagster/sensor_name"}
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        instance.add_dynamic_partitions("drops", ["probe-000000000000"])  # a write and a read round trip
        assert instance.get_dynamic_partitions("drops") == ["probe-000000000000"]
    finally:
        instance.dispose()


def _failure(instance: dg.DagsterInstance, run_id: str) -> str:
    """What a failed run's step and run failure events say (so a CI failure names its cause)."""
    kinds = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    lines = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.event_type not in kinds:
            continue
        error = getattr(event.event_specific_data, "error", None)
        detail = error.to_string() if error is not None else entry.user_message
        lines.append(f"{run_id} {event.step_key or 'run'}: {detail}")
    return "\n".join(lines) or f"{run_id}: no failure event"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_twenty_drops_run_queued_two_at_a_time_on_postgres_and_s3(deployment, s3_server):
    dep, instance, bucket = deployment
    s3 = s3_server.client()
    hashes = set()
    for n in range(FILES):
        data = employee_csv(n)
        hashes.add(hashlib.sha256(data).hexdigest())
        s3.put_object(Bucket=bucket, Key=f"drops/{TENANTS[n % len(TENANTS)]}/workers_{n:02d}.csv", Body=data)
    assert len(hashes) == FILES

    dep.start_sensor("s3_drop_sensor")
    dep.start_daemon()
    started_at = time.monotonic()
    most_started, done = 0, []
    while time.monotonic() - started_at < DEADLINE_S:
        assert dep.daemon_alive(), f"the daemon exited:\n{dep.log_tail()}"
        running = instance.get_runs_count(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        most_started = max(most_started, running)
        done = instance.get_runs(
            dg.RunsFilter(
                job_name="process_drop",
                statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
            )
        )
        if len(done) >= FILES:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started_at

    records = instance.get_run_records(dg.RunsFilter(job_name="process_drop"))
    statuses = {r.dagster_run.status for r in records}
    failed = [r.dagster_run.run_id for r in records if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS]
    assert len(done) >= FILES, (
        f"{len(done)}/{FILES} runs finished in {elapsed:.0f}s, statuses {statuses}:\n{dep.log_tail()}"
    )
    assert not failed, f"runs did not succeed: {failed}\n" + "\n".join(
        _failure(instance, run_id) for run_id in failed
    )
    assert len(records) == FILES  # nothing ran twice
    run_hashes = [r.dagster_run.tags["snapmap/hash"] for r in records]
    assert sorted(run_hashes) == sorted(hashes)  # one run per content hash, none skipped
    assert all(r.dagster_run.tags.get("dagster/sensor_name") == "s3_drop_sensor" for r in records)

    intervals = [(r.start_time, r.end_time) for r in records]
    assert all(s is not None and e is not None for s, e in intervals)
    assert max_overlap(intervals) <= LIMIT
    assert most_started <= LIMIT
    assert max_overlap(intervals) == LIMIT  # the limit was reached: the queue, not luck, bounded it

    # artifacts and the mapping index live on S3, and the drops moved to processed/
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    outputs = [k for k in keys if k.startswith("artifacts/drops/") and k.endswith("/out/employee.xml")]
    assert len(outputs) == FILES
    assert any(k.startswith("artifacts/frames/parsed_table/") for k in keys)
    assert any(k.startswith("artifacts/lancedb/") for k in keys)
    pending = [k for k in keys if k.startswith("drops/") and not k.startswith("drops/processed/")]
    assert pending == []
