"""Retention with fake clocks: older than the tenant's retention goes, newer never does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from snapmap_pipeline.core.retention import Aged, expired, purge, retention_days
from snapmap_pipeline.defs.artifacts import LocalArtifactStore
from snapmap_pipeline.errors import ConfigError
from snapmap_pipeline.settings import Settings

NOW = datetime(2024, 6, 30, 12, tzinfo=UTC)


def store_with_drops(root: Path, ages: dict[str, tuple[str, int]]) -> LocalArtifactStore:
    store = LocalArtifactStore(root)
    for key, (tenant, days) in ages.items():
        at = (NOW - timedelta(days=days)).isoformat()
        store.write_json(f"drops/{key}/drop.json", {"key": key, "tenant": tenant, "dropped_at": at})
        store.write_bytes(f"drops/{key}/upload/f.csv", b"a,b\n1,2\n")
        store.write_bytes(f"frames/parsed_table/{key}.parquet", b"x")
    return store


def test_purges_only_what_is_older_than_retention(tmp_path):
    store = store_with_drops(tmp_path, {"old-1": ("acme", 31), "edge-2": ("acme", 30), "new-3": ("acme", 1)})
    store.write_bytes("daily/acme.employee/2024-05-01/employee-ingest.xml", b"<x/>")
    store.write_bytes("daily/acme.employee/2024-06-29/employee-ingest.xml", b"<x/>")
    report = purge(store, clock=lambda: NOW, days_for=lambda tenant: 30)
    assert report.purged_drop_keys == ["old-1"]
    assert report.to_dict() == {"purged": {"drop": 1, "daily": 1}, "kept": {"drop": 2, "daily": 1}}
    assert not store.exists("drops/old-1") and not store.exists("frames/parsed_table/old-1.parquet")
    assert store.exists("drops/edge-2/upload/f.csv") and store.exists("frames/parsed_table/new-3.parquet")
    assert not store.exists("daily/acme.employee/2024-05-01")
    assert store.exists("daily/acme.employee/2024-06-29/employee-ingest.xml")


def test_tenant_retention_from_config(tmp_path):
    tenants = tmp_path / "config" / "tenants"
    tenants.mkdir(parents=True)
    (tenants / "short.yaml").write_text("retention_days: 7\n")
    (tenants / "bad.yaml").write_text("retention_days: -1\n")
    settings = Settings(config_dir=tmp_path / "config", retention_days=30)
    assert retention_days("short", settings) == 7
    assert retention_days("other", settings) == 30
    assert retention_days(None, settings) == 30
    with pytest.raises(ConfigError, match="retention_days"):
        retention_days("bad", settings)
    items = [
        Aged("drop", "a", "short", NOW - timedelta(days=8)),
        Aged("drop", "b", "other", NOW - timedelta(days=8)),
    ]
    assert [i.ref for i in expired(items, now=NOW, days_for=lambda t: retention_days(t, settings))] == ["a"]


def test_logs_counts_not_names(tmp_path, caplog):
    store = store_with_drops(tmp_path, {"secret-name-1": ("acme", 40)})
    with caplog.at_level("INFO", logger="snapmap"):
        purge(store, clock=lambda: NOW, days_for=lambda tenant: 30)
    text = " ".join(r.getMessage() + str(getattr(r, "fields", "")) for r in caplog.records)
    assert "secret-name" not in text and "purged_drops" in text
