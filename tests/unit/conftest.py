"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from snapmap_pipeline.settings import Settings


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One artifacts root per test module: the field index is built once and reused, as in production.
    Modules that write mapping memory, or need other settings, define their own `settings`."""
    return Settings(artifacts_root=str(tmp_path_factory.mktemp("artifacts")))
