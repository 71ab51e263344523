"""E2E fixtures: a temp DAGSTER_HOME, artifacts root, drop folder and config per test, and the
definitions built for them (the same `build_defs` that `dagster dev` loads)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Env:
    home: Path
    drops: Path
    artifacts: Path
    config: Path
    instance: dg.DagsterInstance
    defs: dg.Definitions

    def drop(self, name: str, content: bytes | str, at: datetime | None = None) -> Path:
        path = self.drops / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        if at is not None:
            os.utime(path, (at.timestamp(), at.timestamp()))
        return path

    def rebuild(self) -> None:
        """Definitions again after a settings change (e.g. a new override file is read on each run)."""
        from snapmap_pipeline.defs import build_defs
        from snapmap_pipeline.settings import get_settings

        get_settings.cache_clear()
        self.defs = build_defs()


@pytest.fixture()
def dagster_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home, drops, artifacts, config = (tmp_path / n for n in ("dagster_home", "drops", "artifacts", "config"))
    for p in (home, drops, artifacts):
        p.mkdir()
    shutil.copytree(PROJECT_ROOT / "config", config, ignore=shutil.ignore_patterns("tenants"))
    (config / "tenants").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SNAPMAP_ENV", "local")
    monkeypatch.setenv("SNAPMAP_ARTIFACTS_ROOT", str(artifacts))
    monkeypatch.setenv("SNAPMAP_DROP_ROOT", str(drops))
    monkeypatch.setenv("SNAPMAP_CONFIG_DIR", str(config))
    monkeypatch.delenv("SNAPMAP_ALERT_WEBHOOK_URL", raising=False)
    from snapmap_pipeline.defs import build_defs
    from snapmap_pipeline.settings import get_settings

    get_settings.cache_clear()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield Env(home, drops, artifacts, config, instance, build_defs())
    get_settings.cache_clear()
