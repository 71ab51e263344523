"""Structured logging. JSON lines when SNAPMAP_LOG_FORMAT=json.

Rule: log counts, column names, rule names and codes; never cell values (names, emails, ids).
Use `log.info("rows read", extra={"fields": {"rows": n}})` to attach structured fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_CONFIGURED = False


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}) or {})
        if record.exc_info and record.exc_info[0] is not None:
            payload["error"] = record.exc_info[0].__name__
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if fields:
            base += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return base


def configure(fmt: str | None = None, level: str | None = None) -> None:
    """Configure the `snapmap` logger once (stderr)."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    from snapmap_pipeline.settings import get_settings

    settings = get_settings()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if (fmt or settings.log_format) == "json" else TextFormatter())
    root = logging.getLogger("snapmap")
    root.handlers[:] = [handler]
    root.setLevel((level or settings.log_level).upper())
    root.propagate = False
    _CONFIGURED = True


def get_logger(name: str) -> logging.Logger:
    """A child of the `snapmap` logger, e.g. get_logger(__name__)."""
    short = name.removeprefix("snapmap_pipeline.")
    return logging.getLogger(f"snapmap.{short}")
