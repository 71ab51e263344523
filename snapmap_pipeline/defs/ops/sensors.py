"""Alerts: every failed run is logged with its partition, failing step and reason, and POSTed to
`settings.alert_webhook_url` when one is set. An unreadable drop moves to `failed/` when configured;
one blocked for review stays where it is, waiting for its rerun."""

import json
import urllib.error
import urllib.request
from typing import Any

import dagster as dg

from snapmap_pipeline.defs.drops.partitions import TAG_PATH, TAG_SOURCE
from snapmap_pipeline.defs.resources import DropSourcesResource
from snapmap_pipeline.errors import SnapMapError
from snapmap_pipeline.logs import get_logger
from snapmap_pipeline.settings import get_settings

log = get_logger(__name__)

REVIEW_CHECKS = ("mapping_reviewed",)  # blocking checks a person satisfies (an override), then reruns
REVIEW_STEPS = ("inferred_entity",)  # steps whose failure means the same (entity unknown)


def needs_review(context: dg.RunFailureSensorContext, failing_steps: list[dict[str, Any]]) -> bool:
    """A run stopped for a person's review, not broken: its file stays where it is for the rerun."""
    if any(m in (s["step"] or "") for s in failing_steps for m in REVIEW_STEPS):
        return True
    records = context.instance.get_records_for_run(
        context.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    evaluations = (r.event_log_entry.dagster_event.event_specific_data for r in records)
    return any(e.check_name in REVIEW_CHECKS and not e.passed for e in evaluations)


def alert_payload(context: dg.RunFailureSensorContext) -> dict[str, Any]:
    run = context.dagster_run
    steps = [
        {
            "step": ev.step_key,
            "reason": (ev.step_failure_data.error.message.strip().splitlines() or [""])[0][:500]
            if ev.step_failure_data and ev.step_failure_data.error
            else "",
        }
        for ev in context.get_step_failure_events()
    ]
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "partition": run.tags.get("dagster/partition"),
        "failing_steps": steps,
        "reason": context.failure_event.message if context.failure_event else "",
    }


def post_webhook(url: str, payload: dict[str, Any], timeout: float = 5.0) -> bool:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (configured https URL)
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError) as exc:
        log.warning("alert webhook failed", extra={"fields": {"error": type(exc).__name__}})
        return False


@dg.run_failure_sensor(
    name="run_failure_alert", default_status=dg.DefaultSensorStatus.RUNNING, monitor_all_code_locations=False
)
def run_failure_alert(context: dg.RunFailureSensorContext, drop_sources: DropSourcesResource) -> None:
    payload = alert_payload(context)
    steps = ", ".join(s["step"] or "" for s in payload["failing_steps"]) or "run"
    context.log.warning(f"run failed: partition={payload['partition']} step={steps}")
    log.warning(
        "run failed",
        extra={"fields": {"partition": payload["partition"], "steps": steps, "job": payload["job"]}},
    )
    url = get_settings().alert_webhook_url
    if url:
        post_webhook(url, payload)
    tags = context.dagster_run.tags
    review = needs_review(context, payload["failing_steps"])
    if (
        TAG_PATH in tags
        and not review
        and drop_sources.move_processed
        and drop_sources.configured(tags[TAG_SOURCE])
    ):
        try:
            with drop_sources.source(tags[TAG_SOURCE]) as source:
                source.move(tags[TAG_PATH], "failed")
        except SnapMapError as exc:
            log.warning("could not move failed drop", extra={"fields": {"code": exc.code}})
