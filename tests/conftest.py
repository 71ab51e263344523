"""Shared test setup: offline model, one torch thread, a reference-folder fixture, temp artifacts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REFERENCE = PROJECT_ROOT.parent / "shared" / "eightfold-reference"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def reference() -> Path:
    """Eightfold's own reference folder (../shared/eightfold-reference). Skips with a reason if absent."""
    if not REFERENCE.is_dir():
        if IN_CI:
            pytest.fail(f"CI=true but the Eightfold reference is missing at {REFERENCE}")
        pytest.skip(f"Eightfold reference not found at {REFERENCE}")
    return REFERENCE


@pytest.fixture()
def artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp artifacts root (LanceDB, frames, outputs) so tests never touch ./.snapmap."""
    root = tmp_path / "artifacts"
    root.mkdir()
    monkeypatch.setenv("SNAPMAP_ARTIFACTS_ROOT", str(root))
    from snapmap_pipeline.settings import get_settings

    get_settings.cache_clear()
    yield root
    get_settings.cache_clear()
