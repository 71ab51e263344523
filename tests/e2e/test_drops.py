"""A dropped file through the sensor and the per-file assets: checks pass, duplicates never rerun, a
blocked mapping stops the feed until an override and a rerun."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster_support import workday

from snapmap_pipeline.run_local import execute_request, process_drops

pytestmark = pytest.mark.e2e

GOOD = workday(
    ("1001", "Maria", "Gonzalez", "maria.gonzalez@acme-corp.com", "Data Engineer", "2019-03-18"),
    ("1002", "James", "Oneil", "james.oneil@acme-corp.com", "Product Manager", "2020-11-02"),
    ("1003", "Tom", "Becker", "tom.becker@gmail.com", "Account Executive", "2022-01-10"),
)


def check_results(instance: dg.DagsterInstance, run_id: str) -> dict[str, bool]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    evals = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    return {e.check_name: e.passed for e in evals}


def test_drop_runs_every_check_and_same_bytes_never_run_again(dagster_env):
    dagster_env.drop("acme/workers.csv", GOOD)
    first = process_drops(dagster_env.instance, dagster_env.defs)
    assert len(first) == 1 and first[0].success, first
    out = first[0]
    assert out.entity == "employee" and out.rows_in == 3
    assert out.rows_valid + out.rows_quarantined == 3 and out.rows_quarantined >= 1  # the gmail address
    assert Path(out.outputs["xml"]).is_file()
    checks = check_results(dagster_env.instance, out.run_id)
    assert {"mapping_reviewed", "contract", "row_conservation", "xml_valid"} <= set(checks)
    assert all(checks.values()), checks
    tags = dagster_env.instance.get_run_by_id(out.run_id).tags
    assert tags["snapmap/path"] == "acme/workers.csv" and tags["snapmap/tenant"] == "acme"
    assert set(out.partition) <= set("abcdefghijklmnopqrstuvwxyz0123456789._-")

    dagster_env.drop("acme/copy of workers.csv", GOOD)  # same bytes, another name
    assert process_drops(dagster_env.instance, dagster_env.defs) == []
    assert len(dagster_env.instance.get_dynamic_partitions("drops")) == 1


def test_blocked_mapping_stops_downstream_until_override_and_rerun(dagster_env):
    from snapmap_pipeline.core.mapping import set_override

    cryptic = (
        "EMP_NO,FNM,LNM,EML_ADDR,JC\n"
        "H-1,Nelson,Bighetti,nelson@hooli.com,ENG2\nH-2,Bert,Gilfoyle,bert@hooli.com,ENG3\n"
    )
    dagster_env.drop("hooli/legacy.csv", cryptic)
    (dagster_env.config / "tenants" / "hooli.yaml").write_text("entity: employee\n")
    requests = []
    from snapmap_pipeline.run_local import sensor_tick

    cursor = None
    for _ in range(2):
        reqs, cursor = sensor_tick(dagster_env.instance, dagster_env.defs, "local_drop_sensor", cursor)
        requests += reqs
    assert len(requests) == 1
    first = execute_request(dagster_env.instance, dagster_env.defs, requests[0])
    assert not first.success
    assert check_results(dagster_env.instance, first.run_id)["mapping_reviewed"] is False
    materialised = {e.asset_key.to_user_string() for e in first.get_asset_materialization_events()}
    assert "field_mapping" in materialised
    assert not materialised & {"validated_frame", "eightfold_xml", "delivery"}

    for header, field in {
        "EMP_NO": "EMPLOYEE_ID",
        "FNM": "FIRST_NAME",
        "LNM": "LAST_NAME",
        "EML_ADDR": "EMAIL",
        "JC": "JOB_CODE",
    }.items():
        set_override("hooli", header, field)
    rerun = execute_request(dagster_env.instance, dagster_env.defs, requests[0])  # re-execute the partition
    assert rerun.success
    assert all(check_results(dagster_env.instance, rerun.run_id).values())
    assert {e.asset_key.to_user_string() for e in rerun.get_asset_materialization_events()} >= {
        "validated_frame",
        "eightfold_xml",
        "delivery",
    }


def test_unreadable_drop_fails_with_a_reason(dagster_env):
    dagster_env.drop("acme/empty.csv", "")
    outs = process_drops(dagster_env.instance, dagster_env.defs)
    assert len(outs) == 1 and not outs[0].success and outs[0].error


def test_two_drops_each_run_their_own_partition(dagster_env):
    other = workday(("2001", "Lea", "Roth", "lea.roth@acme-corp.com", "Designer", "2021-05-03"))
    dagster_env.drop("acme/workers.csv", GOOD)
    dagster_env.drop("globex/workers.csv", other)
    outcomes = process_drops(dagster_env.instance, dagster_env.defs)
    assert len(outcomes) == 2 and all(o.success for o in outcomes), outcomes
    assert sorted(o.rows_in for o in outcomes) == [1, 3]
    for o in outcomes:
        assert all(check_results(dagster_env.instance, o.run_id).values())


# -- the executor per run: one process for a small file, one per step above the threshold ----------------
def drop_job(folder: Path):
    """`process_drop` from a code location file, as a launched run loads it (its step processes too).
    A file of the test's own, so the definitions are built for this test's settings, not the ones an
    earlier test in this worker imported `snapmap_pipeline.defs` with."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    code = folder / "code_location.py"
    code.write_text("from snapmap_pipeline.defs import build_defs\n\ndefs = build_defs()\n")
    project = Path(__file__).resolve().parents[2]
    repo = ReconstructableRepository.for_file(str(code), "defs", str(project))
    return repo.get_reconstructable_job("process_drop")


def _request(dagster_env, name: str, content: str) -> dg.RunRequest:
    """The drop sensor's request for one file, evaluated as the daemon does: inside its definitions."""
    dagster_env.drop(name, content)
    sensor = dagster_env.defs.resolve_sensor_def("local_drop_sensor")
    cursor, requests = None, []
    for _ in range(2):  # a file is taken on its second look
        with dg.build_sensor_context(
            instance=dagster_env.instance,
            cursor=cursor,
            definitions=dagster_env.defs,
            resources=dagster_env.defs.resources,
            sensor_name="local_drop_sensor",
        ) as ctx:
            result = sensor(ctx)
        cursor = result.cursor
        for req in result.dynamic_partitions_requests or []:
            dagster_env.instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        requests += result.run_requests or []
    assert len(requests) == 1
    return requests[0]


def _run(dagster_env, req: dg.RunRequest) -> tuple[dg.DagsterRun, set[str], set[str]]:
    """Execute the request the way a launched run does (its run config, a reconstructable job); the run,
    the steps that started their own process, and the steps that succeeded."""
    with dg.execute_job(
        drop_job(dagster_env.home),
        instance=dagster_env.instance,
        run_config=req.run_config,
        tags={**req.tags, "dagster/partition": req.partition_key},
    ) as result:
        run_id = result.run_id
    records = dagster_env.instance.get_records_for_run(run_id).records
    events = [r.event_log_entry.dagster_event for r in records if r.event_log_entry.dagster_event]
    T = dg.DagsterEventType
    workers = {e.step_key for e in events if e.event_type == T.STEP_WORKER_STARTING}
    done = {e.step_key for e in events if e.event_type == T.STEP_SUCCESS}
    return dagster_env.instance.get_run_by_id(run_id), workers, done


def test_a_small_drop_runs_every_step_in_one_process(dagster_env):
    req = _request(dagster_env, "acme/workers.csv", GOOD)
    assert req.run_config == {"execution": {"config": {"in_process": {}}}}
    assert req.tags["snapmap/executor"] == "in_process"
    run, workers, done = _run(dagster_env, req)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert workers == set()  # no step process started
    assert {"raw_upload", "field_mapping", "validated_frame", "eightfold_xml", "delivery"} <= done
    assert "validated_frame_quality_suite" in done
    assert all(check_results(dagster_env.instance, run.run_id).values())


@pytest.mark.slow  # one process per step: ~20 s here, more under load
def test_a_drop_above_the_threshold_runs_one_process_per_step(dagster_env, monkeypatch):
    monkeypatch.setenv("SNAPMAP_IN_PROCESS_BELOW_BYTES", str(len(GOOD)))  # this file is not below it
    req = _request(dagster_env, "acme/workers.csv", GOOD)
    assert not req.run_config and "snapmap/executor" not in req.tags
    run, workers, done = _run(dagster_env, req)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert workers == done  # each step in a process of its own
    assert all(check_results(dagster_env.instance, run.run_id).values())


def test_a_deployment_with_another_executor_keeps_it(dagster_env):
    from snapmap_pipeline.defs import build_defs

    dagster_env.defs = build_defs(executor=dg.in_process_executor)  # its config has no in_process choice
    req = _request(dagster_env, "acme/workers.csv", GOOD)
    assert not req.run_config and "snapmap/executor" not in req.tags
