"""What `make run` runs: the local drop sensor over examples/drops/, then the runs it requests, in-process,
on the persistent DAGSTER_HOME (SQLite), so `make ui` shows them. Prints one summary line per file.
"""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from snapmap_pipeline.logs import configure, get_logger

log = get_logger(__name__)

DAGSTER_YAML = """\
# Written by `make run` for the local instance: SQLite storage under this folder, no welcome modal.
storage:
  sqlite:
    base_dir: {base}
nux:
  enabled: false
telemetry:
  enabled: false
"""
REVIEW_CHECK = "mapping_reviewed"


def ensure_instance_home() -> Path:
    """DAGSTER_HOME from the environment (the Makefile sets .snapmap/dagster_home), with a dagster.yaml."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        from snapmap_pipeline.settings import PROJECT_ROOT

        home = str(PROJECT_ROOT / ".snapmap" / "dagster_home")
        os.environ["DAGSTER_HOME"] = home
    path = Path(home)
    path.mkdir(parents=True, exist_ok=True)
    cfg = path / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(DAGSTER_YAML.format(base=path / "storage"))
    return path


@dataclass
class FileOutcome:
    path: str
    partition: str
    run_id: str
    success: bool
    entity: str | None = None
    rows_in: int | None = None
    rows_valid: int | None = None
    rows_quarantined: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    error: str | None = None

    def line(self) -> str:
        head = f"{self.path}: "
        if self.blocked:
            return (
                head
                + f"{self.entity or '?'}, {self.rows_in} rows, BLOCKED for review:\n      "
                + "\n      ".join(self.blocked[:3])
            )
        if not self.success:
            return head + f"failed: {self.error or 'see the run in the UI'}"
        xml = self.outputs.get("xml")
        where = f" → {Path(xml).parent}" if xml else ""
        csv = "" if self.outputs.get("csv") else " (CSV skipped: see report)"
        return head + (
            f"{self.entity}, {self.rows_in} rows, {self.rows_valid} valid, "
            f"{self.rows_quarantined} quarantined{csv}{where}"
        )


def sensor_tick(
    instance: dg.DagsterInstance, defs: dg.Definitions, sensor_name: str, cursor: str | None
) -> tuple[list[dg.RunRequest], str | None]:
    """Evaluate one sensor tick like the daemon does: add the requested partitions, return the runs."""
    sensor = defs.resolve_sensor_def(sensor_name)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=defs.resources, sensor_name=sensor_name
    ) as ctx:
        result = sensor(ctx)
    if isinstance(result, dg.SkipReason):
        return [], cursor
    for req in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys or []))
    return list(result.run_requests or []), result.cursor


def execute_request(
    instance: dg.DagsterInstance, defs: dg.Definitions, req: dg.RunRequest
) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(req.job_name or "process_drop")
    tags = {**req.tags, "dagster/run_key": req.run_key or ""}
    # The run's full event log is in the instance (and the UI); the console only gets the summary.
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    return job.execute_in_process(
        run_config=quiet, instance=instance, partition_key=req.partition_key, tags=tags, raise_on_error=False
    )


def outcome(result: dg.ExecuteInProcessResult, req: dg.RunRequest) -> FileOutcome:
    """Read the figures back from the run's materialisations and check results."""
    out = FileOutcome(
        req.tags.get("snapmap/path", ""), req.partition_key or "", result.run_id, result.success
    )
    for ev in result.get_asset_materialization_events():
        mat = ev.event_specific_data.materialization
        meta = {k: v.value for k, v in mat.metadata.items()}
        name = mat.asset_key.to_user_string()
        if name == "inferred_entity":
            out.entity = meta.get("entity")
        elif name == "parsed_table":
            out.rows_in = meta.get("rows")
        elif name == "validated_frame":  # after parsed_table, whose rows are only a prefix when streamed
            out.rows_in = meta.get("rows in", out.rows_in)
            out.rows_valid, out.rows_quarantined = meta.get("rows valid"), meta.get("rows quarantined")
        elif name == "eightfold_xml":
            out.outputs.update(xml=meta.get("xml"), quarantine=meta.get("quarantine"))
        elif name == "eightfold_csv":
            out.outputs["csv"] = meta.get("csv")
    for ev in result.all_events:
        if ev.event_type_value == "ASSET_CHECK_EVALUATION":
            data = ev.event_specific_data
            if data.check_name == REVIEW_CHECK and not data.passed:
                out.blocked = [str(x) for x in data.metadata["to review"].value] or ["see the run"]
    if not out.success and not out.blocked:
        failures = [ev for ev in result.all_events if ev.event_type_value == "STEP_FAILURE"]
        if failures and failures[0].step_failure_data and failures[0].step_failure_data.error:
            out.error = failures[0].step_failure_data.error.message.strip().splitlines()[0][:200]
    return out


def process_drops(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    sensor_name: str = "local_drop_sensor",
    ticks: int = 2,
    progress: Any = None,
) -> list[FileOutcome]:
    """`ticks` sensor ticks (a file is taken once it looked the same twice), each followed by its runs.

    The sensor cursor is kept on the instance between calls, so files already taken are not requested again.
    """
    state_key = f"snapmap/run_local/{sensor_name}"
    cursor = instance.run_storage.get_cursor_values({state_key}).get(state_key)
    outcomes = []
    for _ in range(ticks):
        requests, cursor = sensor_tick(instance, defs, sensor_name, cursor)
        for req in requests:
            if progress is not None:
                progress(req)
            outcomes.append(outcome(execute_request(instance, defs, req), req))
    if cursor is not None:
        instance.run_storage.set_cursor_values({state_key: cursor})
    return outcomes


def main() -> int:
    # Step logs stay in the instance (the UI shows them); the console shows progress and the summary.
    configure(level=os.environ.get("SNAPMAP_LOG_LEVEL", "WARNING"))
    home = ensure_instance_home()
    from snapmap_pipeline.defs import defs
    from snapmap_pipeline.settings import get_settings

    settings = get_settings()
    instance = dg.DagsterInstance.get()
    out = sys.stdout

    def progress(req: dg.RunRequest) -> None:
        out.write(f"  running {req.tags.get('snapmap/path', req.partition_key)} …\n")
        out.flush()

    outcomes = process_drops(instance, defs, progress=progress)
    out.write(f"\nSnapMap: {len(outcomes)} new file(s) from {settings.drop_root}\n")
    for o in outcomes:
        out.write("  " + o.line() + "\n")
    if not outcomes:
        out.write("  nothing new (every file's bytes already ran; drop a new file or `make clean`)\n")
    out.write(f"\nArtifacts: {settings.artifacts_root}\nDagster instance: {home}\n")
    out.write(
        "Open the UI with `make ui` (http://localhost:3000): lineage, checks, and reruns after a review.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
