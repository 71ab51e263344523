"""Retention: which stored drops and daily feeds are older than their tenant's retention, and purging
them. HR files are personal data, so nothing outlives its retention; nothing newer is ever touched.
No Dagster imports; the clock is injectable so tests never wait.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import yaml

from snapmap_pipeline import yamlfile
from snapmap_pipeline.errors import ConfigError
from snapmap_pipeline.logs import get_logger
from snapmap_pipeline.settings import Settings, get_settings

log = get_logger(__name__)

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Aged:
    """One purgeable thing: a drop (ref = its partition key) or a daily feed (ref = its folder)."""

    kind: str  # "drop" or "daily"
    ref: str
    tenant: str | None
    created: datetime


class RetentionStore(Protocol):
    """What the purge needs from the artifacts store (local folder or S3)."""

    def aged_items(self) -> Iterable[Aged]: ...

    def purge(self, item: Aged) -> None: ...


@dataclass
class PurgeReport:
    purged: Counter = field(default_factory=Counter)  # kind → count
    kept: Counter = field(default_factory=Counter)
    purged_drop_keys: list[str] = field(default_factory=list)  # for the shell to drop partitions

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {"purged": dict(self.purged), "kept": dict(self.kept)}


def retention_days(tenant: str | None, settings: Settings | None = None) -> int:
    """The tenant's `retention_days` from config/tenants/<tenant>.yaml, else the global default."""
    settings = settings or get_settings()
    if not tenant:
        return settings.retention_days
    path = Path(settings.config_dir) / "tenants" / f"{tenant}.yaml"
    if not path.is_file():
        return settings.retention_days
    try:
        raw = yamlfile.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path.name}: cannot read: {exc}; fix the YAML", path=str(path)) from exc
    days = raw.get("retention_days") if isinstance(raw, dict) else None
    if days is None:
        return settings.retention_days
    if not isinstance(days, int) or days < 1:
        raise ConfigError(f"{path.name}: retention_days must be a whole number of days ≥ 1", path=str(path))
    return days


def is_expired(item: Aged, now: datetime, days: int) -> bool:
    """Strictly older than the retention: an item exactly `days` old is kept."""
    return item.created < now - timedelta(days=days)


def expired(items: Iterable[Aged], *, now: datetime, days_for: Callable[[str | None], int]) -> list[Aged]:
    cache: dict[str | None, int] = {}
    out = []
    for item in items:  # one entry per stored drop/day, not per row: a loop is the natural shape
        if item.tenant not in cache:
            cache[item.tenant] = days_for(item.tenant)
        if is_expired(item, now, cache[item.tenant]):
            out.append(item)
    return out


def purge(
    store: RetentionStore,
    *,
    clock: Clock = system_clock,
    days_for: Callable[[str | None], int] | None = None,
    settings: Settings | None = None,
) -> PurgeReport:
    """Delete everything older than its tenant's retention. Logs counts, never names."""
    settings = settings or get_settings()
    days_for = days_for or (lambda tenant: retention_days(tenant, settings))
    now = clock()
    items = list(store.aged_items())
    gone = expired(items, now=now, days_for=days_for)
    report = PurgeReport()
    gone_ids = {(i.kind, i.ref) for i in gone}
    for item in gone:
        store.purge(item)
        report.purged[item.kind] += 1
        if item.kind == "drop":
            report.purged_drop_keys.append(item.ref)
    for item in items:
        if (item.kind, item.ref) not in gone_ids:
            report.kept[item.kind] += 1
    log.info(
        "retention purge",
        extra={
            "fields": {
                "purged_drops": report.purged["drop"],
                "purged_daily": report.purged["daily"],
                "kept_drops": report.kept["drop"],
                "kept_daily": report.kept["daily"],
            }
        },
    )
    return report
