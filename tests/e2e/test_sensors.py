"""The Dagster shell's sensors under load and against real servers: a 10,000-file local backlog drains in
bounded ticks with every file requested once, a failed run POSTs its alert to a webhook, and the S3 and
SFTP drop sensors request one run per stable file."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import psutil
import pytest

from snapmap_pipeline.defs.drops.partitions import TAG_HASH, TAG_SOURCE, TAG_TENANT
from snapmap_pipeline.defs.drops.sensors import PAGE_LIMIT
from snapmap_pipeline.run_local import execute_request, sensor_tick
from tests.integration.conftest import s3_server, sshd_server  # noqa: F401 (real-server fixtures)

pytestmark = pytest.mark.e2e

BACKLOG = 10_000
TICK_LIMIT_S = 20.0  # Dagster cancels a sensor tick after 60 s; keep a wide margin


@pytest.mark.slow  # 60-100 s: ~50 ticks, each walking 10,000 files and querying runs per file
def test_local_backlog_drains_in_bounded_ticks_each_file_once(dagster_env):
    tenants = [f"t{i}" for i in range(10)]
    for t in tenants:
        (dagster_env.drops / t).mkdir()
    expected: dict[str, str] = {}
    for i in range(BACKLOG):  # one small distinct file each: the backlog is the point of the test
        name = f"{tenants[i % len(tenants)]}/f{i:05d}.csv"
        data = f"id,value\n{i},x\n".encode()
        (dagster_env.drops / name).write_bytes(data)
        expected[hashlib.sha256(data).hexdigest()] = name

    requested: dict[str, str] = {}
    cursor = None
    durations: list[float] = []
    for _ in range(3 * BACKLOG // PAGE_LIMIT):  # ample: each file is seen on two looks
        started = time.perf_counter()
        requests, cursor = sensor_tick(dagster_env.instance, dagster_env.defs, "local_drop_sensor", cursor)
        durations.append(time.perf_counter() - started)
        assert len(requests) <= 2 * PAGE_LIMIT  # a page, plus the previous page on its second look
        for req in requests:
            assert req.run_key not in requested, f"{req.tags['snapmap/path']} requested twice"
            requested[req.run_key] = req.tags["snapmap/path"]
        if len(requested) == BACKLOG:
            break
    assert requested == expected
    assert max(durations) < TICK_LIMIT_S, f"slowest tick {max(durations):.1f}s"
    # Once drained, further ticks request nothing.
    for _ in range(2):
        requests, cursor = sensor_tick(dagster_env.instance, dagster_env.defs, "local_drop_sensor", cursor)
        assert requests == []
    assert len(dagster_env.instance.get_dynamic_partitions("drops")) == BACKLOG


class _Webhook:
    """A loopback HTTP server recording every POST (path and JSON body), answering 204."""

    def __init__(self) -> None:
        received: list[tuple[str, bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.path, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (base signature)
                """Quiet: the test reads `received` instead."""

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/snapmap"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def failure_context(
    instance: dg.DagsterInstance, defs: dg.Definitions, run_id: str, sensor_name: str, drop_sources=None
):
    """The context the daemon gives a run-failure sensor: the failed run and its RUN_FAILURE event."""
    run = instance.get_run_by_id(run_id)
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    assert run is not None and records, "the run did not record a failure"
    return dg.build_run_status_sensor_context(
        sensor_name=sensor_name,
        dagster_event=records[0].event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"drop_sources": drop_sources or defs.resources["drop_sources"]},
    ).for_run_failure()


def test_failed_drop_moves_to_failed_but_one_blocked_for_review_stays(dagster_env):
    from snapmap_pipeline.defs.resources import DropSourcesResource

    dagster_env.drop("acme/broken.csv", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>\nendobj\n")
    dagster_env.drop("hooli/legacy.csv", "EMP_NO,FNM,LNM,EML_ADDR,JC\nH-1,Nelson,Bighetti,n@hooli.com,ENG2\n")
    (dagster_env.config / "tenants" / "hooli.yaml").write_text("entity: employee\n")
    dagster_env.rebuild()
    requests, cursor = sensor_tick(dagster_env.instance, dagster_env.defs, "local_drop_sensor", None)
    requests += sensor_tick(dagster_env.instance, dagster_env.defs, "local_drop_sensor", cursor)[0]
    assert len(requests) == 2
    moving = DropSourcesResource(local_root=str(dagster_env.drops), move_processed=True)
    sensor = dagster_env.defs.resolve_sensor_def("run_failure_alert")
    for request in requests:
        result = execute_request(dagster_env.instance, dagster_env.defs, request)
        assert not result.success
        sensor(failure_context(dagster_env.instance, dagster_env.defs, result.run_id, sensor.name, moving))
    assert not (dagster_env.drops / "acme/broken.csv").exists()
    assert [p.name for p in (dagster_env.drops / "failed").rglob("*.csv")] == ["broken.csv"]
    assert (dagster_env.drops / "hooli/legacy.csv").is_file()  # waits for its override and a rerun


def test_run_failure_alert_posts_partition_step_and_reason_without_cells(dagster_env, monkeypatch):
    from snapmap_pipeline.settings import get_settings

    secrets_in_file = ["Maria", "Gonzalez", "maria.gonzalez@acme-corp.com", "1001"]
    pdf = (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>stream\n"
        + ",".join(secrets_in_file).encode()
        + b"\nendobj\n"
    )
    dagster_env.drop("acme/workers.csv", pdf)  # a PDF saved under a .csv name: it cannot be read
    requests, cursor = sensor_tick(dagster_env.instance, dagster_env.defs, "local_drop_sensor", None)
    requests += sensor_tick(dagster_env.instance, dagster_env.defs, "local_drop_sensor", cursor)[0]
    assert len(requests) == 1
    result = execute_request(dagster_env.instance, dagster_env.defs, requests[0])
    assert not result.success
    failed_steps = {
        ev.step_key for ev in result.all_events if ev.event_type_value == "STEP_FAILURE" and ev.step_key
    }
    assert failed_steps

    with _Webhook() as hook:
        monkeypatch.setenv("SNAPMAP_ALERT_WEBHOOK_URL", hook.url)
        get_settings.cache_clear()
        sensor = dagster_env.defs.resolve_sensor_def("run_failure_alert")
        sensor(failure_context(dagster_env.instance, dagster_env.defs, result.run_id, sensor.name))

    assert len(hook.received) == 1
    path, body = hook.received[0]
    assert path == "/hooks/snapmap"
    payload = json.loads(body)
    assert payload["run_id"] == result.run_id
    assert payload["partition"] == requests[0].partition_key
    assert {s["step"] for s in payload["failing_steps"]} == failed_steps
    assert all(s["reason"].strip() for s in payload["failing_steps"])
    assert payload["reason"].strip()
    text = body.decode()
    leaked = [v for v in secrets_in_file if v in text]
    assert not leaked, f"cell values in the alert: {leaked}"


def test_run_failure_alert_without_webhook_posts_nothing(dagster_env):
    dagster_env.drop("acme/empty.csv", b"")
    requests, cursor = sensor_tick(dagster_env.instance, dagster_env.defs, "local_drop_sensor", None)
    requests += sensor_tick(dagster_env.instance, dagster_env.defs, "local_drop_sensor", cursor)[0]
    assert len(requests) == 1
    result = execute_request(dagster_env.instance, dagster_env.defs, requests[0])
    assert not result.success
    with _Webhook() as hook:  # listening, but no SNAPMAP_ALERT_WEBHOOK_URL points at it
        sensor = dagster_env.defs.resolve_sensor_def("run_failure_alert")
        sensor(failure_context(dagster_env.instance, dagster_env.defs, result.run_id, sensor.name))
    assert hook.received == []


def prod_sensor_ticks(dagster_env, monkeypatch, env: dict[str, str], kind: str) -> list[dg.RunRequest]:
    """Two ticks of the `kind` drop sensor under the prod resources configured from `env`."""
    monkeypatch.setenv("SNAPMAP_ENV", "prod")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    dagster_env.rebuild()
    name = f"{kind}_drop_sensor"
    first, cursor = sensor_tick(dagster_env.instance, dagster_env.defs, name, None)
    assert first == []  # one look is not enough: a file is taken once it looked the same twice
    second, cursor = sensor_tick(dagster_env.instance, dagster_env.defs, name, cursor)
    third, _ = sensor_tick(dagster_env.instance, dagster_env.defs, name, cursor)
    assert third == []  # taken files are not requested again
    return second


def assert_one_run_per_file(requests: list[dg.RunRequest], files: dict[str, bytes], kind: str) -> None:
    by_hash = {hashlib.sha256(data).hexdigest(): name for name, data in files.items()}
    assert sorted(r.run_key for r in requests) == sorted(by_hash)
    for req in requests:
        name = by_hash[req.run_key]
        assert req.tags[TAG_HASH] == req.run_key
        assert req.tags[TAG_SOURCE] == kind
        assert req.tags[TAG_TENANT] == name.split("/")[0]
        assert req.partition_key and req.partition_key.endswith(req.run_key[:12])


@pytest.mark.integration
def test_s3_drop_sensor_requests_one_run_per_stable_object(dagster_env, monkeypatch, s3_server):  # noqa: F811
    client = s3_server.client()
    bucket = s3_server.new_bucket(client)
    files = {
        "acme/workers.csv": b"Employee ID,Legal First Name\n1,A\n",
        "globex/hires.csv": b"Employee ID,Legal First Name\n2,B\n",
    }
    for name, data in files.items():
        client.put_object(Bucket=bucket, Key=f"incoming/{name}", Body=data)
    client.put_object(Bucket=bucket, Key="elsewhere/other/x.csv", Body=b"a\n1\n")  # outside the prefix
    env = {
        "SNAPMAP_DROP_BUCKET": bucket,
        "SNAPMAP_DROP_PREFIX": "incoming/",
        "SNAPMAP_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_DEFAULT_REGION": s3_server.region,
    }
    requests = prod_sensor_ticks(dagster_env, monkeypatch, env, "s3")
    assert_one_run_per_file(requests, files, "s3")
    assert {r.tags["snapmap/path"] for r in requests} == set(files)


def _sessions_to(port: int) -> int:
    """This process's established TCP connections to `port`."""
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


@pytest.mark.integration
def test_sftp_drop_sensor_requests_one_run_per_stable_file(dagster_env, monkeypatch, sshd_server, tmp_path):  # noqa: F811
    root = sshd_server.root / f"drops-{tmp_path.name}"
    files = {
        "acme/workers.csv": b"Employee ID,Legal First Name\n3,C\n",
        "initech/hires.csv": b"Employee ID,Legal First Name\n4,D\n",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    env = {
        "SNAPMAP_SFTP_HOST": sshd_server.host,
        "SNAPMAP_SFTP_PORT": str(sshd_server.port),
        "SNAPMAP_SFTP_USER": sshd_server.username,
        "SNAPMAP_SFTP_KEY_PATH": str(sshd_server.pkey_path),
        "SNAPMAP_SFTP_KNOWN_HOSTS": str(sshd_server.known_hosts),
        "SNAPMAP_SFTP_ROOT": str(root),
    }
    before = _sessions_to(sshd_server.port)
    requests = prod_sensor_ticks(dagster_env, monkeypatch, env, "sftp")
    assert_one_run_per_file(requests, files, "sftp")
    assert _sessions_to(sshd_server.port) == before  # each tick closed its SFTP session
    assert {r.tags["snapmap/path"] for r in requests} == set(files)
