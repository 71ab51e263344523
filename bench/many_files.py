"""Many-files throughput: N dropped files across T tenants through the drop sensor, the queued run
coordinator and the daemon (instance on a real PostgreSQL), with the project's executor (small files in
one process, big ones one process per step) and a pool limit on the embedding steps. Reports files per
minute, where a run's time goes (queue, launch, step process starts, step bodies) and the CPU seconds
each file cost, and proves no file ran twice or was skipped.

    python -m bench --many-files                         # 200 files, 5 tenants
    python -m bench.many_files --files 40 --tenants 5 --out /tmp/many_files_40.json
    python -m bench.many_files --files 20 --executor forkserver   # every run one process per step

Writes bench/results/many_files.json (or --out) and prints a small table. Needs PostgreSQL.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
EMBEDDING_POOL = "snapmap_embeddings"
POOL_STEPS = ("inferred_entity", "field_mapping")
TENANTS = ("acme", "globex", "initech", "hooli", "umbrella")


def write_drops(root: Path, files: int, tenants: int, rows: int, seed: int) -> dict[str, str]:
    """`files` distinct exports (seeded) spread over the tenants' folders; {relative path: sha256}."""
    from bench.generate import generate

    out: dict[str, str] = {}
    for n in range(files):
        tenant = TENANTS[n % tenants] if tenants <= len(TENANTS) else f"tenant{n % tenants:02d}"
        rel = f"{tenant}/export_{n:04d}.csv"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        generate(rows, seed=seed + n).write_csv(path)
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t opens)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = now = 0
    for _, step in events:  # a sweep over 2×intervals events
        now += step
        best = max(best, now)
    return best


def pool_step_intervals(instance: Any, run_ids: list[str]) -> list[tuple[float, float]]:
    """(start, end) of every step in the embedding pool, from the runs' event logs."""
    import dagster as dg

    spans: list[tuple[float, float]] = []
    for run_id in run_ids:  # one event-log query per run
        starts: dict[str, float] = {}
        for rec in instance.get_records_for_run(run_id, limit=10_000).records:
            entry = rec.event_log_entry
            ev = entry.dagster_event
            if ev is None or ev.step_key not in POOL_STEPS:
                continue
            if ev.event_type == dg.DagsterEventType.STEP_START:
                starts[ev.step_key] = entry.timestamp
            elif ev.step_key in starts and ev.event_type in (
                dg.DagsterEventType.STEP_SUCCESS,
                dg.DagsterEventType.STEP_FAILURE,
            ):
                spans.append((starts.pop(ev.step_key), entry.timestamp))
    return spans


class GroupCpu:
    """CPU seconds used by a process group (the daemon, its code server, the runs and their steps),
    sampled from /proc twice a second: a process that lives under half a second may be missed, so this
    is a lower bound."""

    def __init__(self, group: int, interval: float = 0.5) -> None:
        self.group = group
        self.interval = interval
        self._seen: dict[tuple[int, str], float] = {}
        self._stop = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")
        self._thread = threading.Thread(target=self._loop, name="group-cpu", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        for entry in os.scandir("/proc"):  # every process; only this group's are kept
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # after the command: state ppid pgrp ... utime(12) stime(13) ... starttime(20), 0-based here
            if int(fields[2]) != self.group:
                continue
            self._seen[(int(entry.name), fields[19])] = (int(fields[11]) + int(fields[12])) / self._tick

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def stop(self) -> float:
        """Stop sampling; the group's CPU seconds so far."""
        self._stop.set()
        self._thread.join(timeout=5)
        return round(sum(self._seen.values()), 1)


def run_phases(instance: Any, run_ids: list[str]) -> dict[str, Any]:
    """Where a run's time goes, as medians over the runs (seconds), from their event logs: the queue
    (enqueued → starting), the launch (starting → the run worker's RUN_START: process start and code
    load), each step's process start (worker starting → step start; none in one process) and body (its
    inputs, work, outputs and events), and the run's whole span."""
    import dagster as dg

    T = dg.DagsterEventType
    phases: dict[str, list[float]] = {}
    steps: dict[str, dict[str, list[float]]] = {}

    def add(bucket: dict[str, list[float]], name: str, a: float | None, b: float | None) -> None:
        if a is not None and b is not None:
            bucket.setdefault(name, []).append(b - a)

    for run_id in run_ids:  # one event-log query per run
        first: dict[Any, float] = {}
        step_first: dict[tuple[str, Any], float] = {}
        for rec in instance.get_records_for_run(run_id, limit=10_000).records:
            entry = rec.event_log_entry
            ev = entry.dagster_event
            if ev is None:
                continue
            if ev.step_key is None:
                first.setdefault(ev.event_type, entry.timestamp)
            else:
                step_first.setdefault((ev.step_key, ev.event_type), entry.timestamp)
        end = first.get(T.RUN_SUCCESS, first.get(T.RUN_FAILURE))
        add(phases, "queued", first.get(T.RUN_ENQUEUED), first.get(T.RUN_STARTING))
        add(phases, "launch", first.get(T.RUN_STARTING), first.get(T.RUN_START))
        add(phases, "run_start_to_end", first.get(T.RUN_START), end)
        add(phases, "enqueued_to_end", first.get(T.RUN_ENQUEUED), end)
        step_times = [t for (_, et), t in step_first.items() if et in (T.STEP_START,)]
        add(phases, "run_start_to_first_step", first.get(T.RUN_START), min(step_times, default=None))
        for key in {k for k, _ in step_first}:
            bucket = steps.setdefault(key, {})
            starting = step_first.get((key, T.STEP_WORKER_STARTING))
            add(bucket, "process_start", starting, step_first.get((key, T.STEP_START)))
            done = step_first.get((key, T.STEP_SUCCESS), step_first.get((key, T.STEP_FAILURE)))
            add(bucket, "body", step_first.get((key, T.STEP_START)), done)

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    return {
        "run": {k: med(v) for k, v in phases.items()},
        "steps": {k: {n: med(v) for n, v in b.items()} for k, b in sorted(steps.items())},
    }


def run(
    *,
    files: int,
    tenants: int,
    rows: int,
    max_runs: int,
    tenant_limit: int,
    pool_limit: int,
    executor: str,
    timeout_s: float,
    seed: int = 7,
    keep: bool = False,
) -> dict[str, Any]:
    """Set up Postgres, the instance, the drops and the daemon; wait for every run; measure."""
    import dagster as dg

    from tests.integration.postgres import DaemonDeployment, PostgresServer, deploy_instance_config

    work = Path(tempfile.mkdtemp(prefix="snapmap-many-"))
    pg = PostgresServer(Path(tempfile.mkdtemp(prefix="snapmap-pg-")))
    dep = None
    instance = None
    try:
        drops = work / "drops"
        t_gen = time.perf_counter()
        expected = write_drops(drops, files, tenants, rows, seed)
        gen_s = time.perf_counter() - t_gen
        pg.start()
        env = {
            **pg.env(),
            "SNAPMAP_ENV": "local",
            "SNAPMAP_ARTIFACTS_ROOT": str(work / "artifacts"),
            "SNAPMAP_DROP_ROOT": str(drops),
            "SNAPMAP_LOG_LEVEL": "WARNING",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "LANCE_LOG": "error",
            "TOKENIZERS_PARALLELISM": "false",
        }
        config = deploy_instance_config(max_concurrent_runs=max_runs, tenant_limit=tenant_limit)
        # "auto": the project's definitions as deployed (the sensor picks in_process for small files)
        chosen = None if executor == "auto" else executor
        dep = DaemonDeployment(work / "dagster_home", env, config, executor=chosen)
        dep.set_pool_limit(EMBEDDING_POOL, pool_limit)
        os.environ.update({k: v for k, v in pg.env().items()})  # this process's instance reads them
        instance = dg.DagsterInstance.from_config(str(dep.home))
        t0 = time.time()
        dep.start_daemon()
        cpu = GroupCpu(dep.proc.pid)  # start_new_session: the group id is the daemon's PID
        in_flight = [
            dg.DagsterRunStatus.QUEUED,
            dg.DagsterRunStatus.NOT_STARTED,
            dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED,
        ]
        while time.time() - t0 < timeout_s:
            if not dep.daemon_alive():
                raise SystemExit(f"the daemon exited:\n{dep.log_tail()}")
            total = instance.get_runs_count(dg.RunsFilter(job_name="process_drop"))
            busy = instance.get_runs_count(dg.RunsFilter(job_name="process_drop", statuses=in_flight))
            if total >= files and busy == 0:
                break
            time.sleep(2)
        cpu_s = cpu.stop()
        records = instance.get_run_records(dg.RunsFilter(job_name="process_drop"))
        succeeded = {
            r.dagster_run.tags.get("snapmap/hash")
            for r in records
            if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        }
        t_sensor = min((r.create_timestamp.timestamp() for r in records), default=t0)
        runs_by_hash: dict[str, list[str]] = {}
        retries = 0
        for r in records:
            tags = r.dagster_run.tags
            if "dagster/parent_run_id" in tags:  # a run retry (run_retries), not a second run of the file
                retries += 1
                continue
            runs_by_hash.setdefault(tags.get("snapmap/hash", ""), []).append(r.dagster_run.run_id)
        statuses: dict[str, int] = {}
        for r in records:
            statuses[r.dagster_run.status.value] = statuses.get(r.dagster_run.status.value, 0) + 1
        spans = [(r.start_time, r.end_time) for r in records if r.start_time and r.end_time]
        first_start = min((s for s, _ in spans), default=t0)
        last_end = max((e for _, e in spans), default=time.time())
        durations = [e - s for s, e in spans]
        pool_spans = pool_step_intervals(instance, [r.dagster_run.run_id for r in records])
        twice = {h: ids for h, ids in runs_by_hash.items() if len(ids) > 1}
        skipped = sorted(rel for rel, h in expected.items() if h not in runs_by_hash)
        result = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            },
            "setup": {
                "files": files,
                "tenants": tenants,
                "rows_per_file": rows,
                "executor": executor,
                "max_concurrent_runs": max_runs,
                "tenant_limit": tenant_limit,
                "pool": EMBEDDING_POOL,
                "pool_limit": pool_limit,
                "storage": "postgres",
                "generate_s": round(gen_s, 2),
            },
            "runs": len(records),
            "run_retries": retries,
            "statuses": statuses,
            "ran_twice": twice,
            "skipped": skipped,
            "wall_s": round(last_end - t0, 1),
            "first_run_request_after_s": round(t_sensor - t0, 1),
            "steady_s": round(last_end - first_start, 1),
            "files_succeeded": len(succeeded & set(expected.values())),
            "files_per_min": round(len(succeeded) / (last_end - t0) * 60, 2) if succeeded else 0.0,
            "files_per_min_steady": round(len(succeeded) / (last_end - first_start) * 60, 2)
            if succeeded and last_end > first_start
            else 0.0,
            "run_s_median": round(statistics.median(durations), 2) if durations else None,
            "run_s_p90": round(sorted(durations)[int(0.9 * (len(durations) - 1))], 2) if durations else None,
            "max_concurrent_runs_seen": max_overlap(spans),
            "max_concurrent_pool_steps_seen": max_overlap(pool_spans),
            "cpu_s": cpu_s,
            "cpu_s_per_file": round(cpu_s / len(succeeded), 1) if succeeded else None,
            "runs_in_process": sum(1 for r in records if r.dagster_run.tags.get("snapmap/executor")),
            "phases": run_phases(instance, [r.dagster_run.run_id for r in records]),
            "complete": set(expected.values()) <= succeeded,
        }
        if not result["complete"]:
            result["daemon_log_tail"] = dep.log_tail(2000)
        return result
    finally:
        if dep is not None:
            dep.stop()
        if instance is not None:
            instance.dispose()
        pg.stop()
        shutil.rmtree(pg.workdir, ignore_errors=True)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def table(res: dict[str, Any]) -> str:
    s = res["setup"]
    rows = [
        ("files / tenants", f"{s['files']} / {s['tenants']} ({s['rows_per_file']} rows each)"),
        ("executor", f"{s['executor']} ({res['runs_in_process']} runs in one process)"),
        (
            "limits",
            f"runs {s['max_concurrent_runs']}, per tenant {s['tenant_limit']}, pool {s['pool_limit']}",
        ),
        ("runs (statuses)", f"{res['runs']} {res['statuses']}"),
        ("files succeeded", f"{res['files_succeeded']} of {s['files']}"),
        (
            "ran twice / skipped / retried",
            f"{len(res['ran_twice'])} / {len(res['skipped'])} / {res['run_retries']}",
        ),
        ("wall (daemon start → last run end)", f"{res['wall_s']} s"),
        ("first run requested after", f"{res['first_run_request_after_s']} s (sensor: two looks)"),
        ("throughput", f"{res['files_per_min']} files/min ({res['files_per_min_steady']} steady)"),
        ("run duration median / p90", f"{res['run_s_median']} s / {res['run_s_p90']} s"),
        (
            "max concurrent runs / pool steps",
            f"{res['max_concurrent_runs_seen']} / {res['max_concurrent_pool_steps_seen']}",
        ),
        ("CPU (daemon, code server, runs)", f"{res['cpu_s']} s, {res['cpu_s_per_file']} s per file"),
        ("load average at end", " ".join(str(x) for x in res["machine"]["loadavg_at_end"])),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--tenants", type=int, default=5)
    ap.add_argument("--rows", type=int, default=50, help="rows per dropped file")
    ap.add_argument("--max-runs", type=int, default=4, help="QueuedRunCoordinator max_concurrent_runs")
    ap.add_argument("--tenant-limit", type=int, default=2, help="runs at once per tenant (tag limit)")
    ap.add_argument("--pool-limit", type=int, default=2, help=f"slots in the {EMBEDDING_POOL} pool")
    ap.add_argument(
        "--executor",
        choices=("auto", "spawn", "forkserver", "in_process"),
        default="auto",
        help="auto: the project's definitions (in_process below SNAPMAP_IN_PROCESS_BELOW_BYTES); the "
        "others force one executor for every run",
    )
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--out", type=Path, default=RESULTS / "many_files.json")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (drops, artifacts, logs)")
    args = ap.parse_args(argv)
    res = run(
        files=args.files,
        tenants=args.tenants,
        rows=args.rows,
        max_runs=args.max_runs,
        tenant_limit=args.tenant_limit,
        pool_limit=args.pool_limit,
        executor=args.executor,
        timeout_s=args.timeout,
        keep=args.keep,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    sys.stdout.write(table(res))
    sys.stdout.write(f"→ {args.out}\n")
    ok = res["complete"] and not res["ran_twice"] and not res["skipped"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
