"""The local-folder drop source and delivery: listing rules, stability, fetch guards, move, manifest."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from snapmap_pipeline.connectors import (
    DeliveryTarget,
    DropSource,
    LocalDelivery,
    LocalDropSource,
    RemoteFile,
    poll,
    release,
    safe_relpath,
)
from snapmap_pipeline.errors import FileTooLargeError, RemotePathError, TransferError


def _drop(root: Path, name: str, data: bytes = b"id,name\n1,a\n") -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_listing_skips_archives_hidden_partial_markers_and_other_types(tmp_path: Path) -> None:
    for name in [
        "acme/employees.csv",
        "acme/jobs.XLSX",
        "globex/deep/er/candidates.tsv",
        "acme/upload.csv.part",
        "acme/employees.csv.done",
        "acme/.hidden.csv",
        ".staging/x.csv",
        "processed/acme/old.csv",
        "failed/acme/bad.csv",
        "acme/readme.pdf",
    ]:
        _drop(tmp_path, name)
    src = LocalDropSource(tmp_path)
    assert isinstance(src, DropSource)
    names = sorted(f.name for f in src.list().files)
    assert names == ["acme/employees.csv", "acme/jobs.XLSX", "globex/deep/er/candidates.tsv"]
    tenants = {f.name: f.tenant for f in src.list().files}
    assert tenants["globex/deep/er/candidates.tsv"] == "globex"


def test_include_filter_is_configurable(tmp_path: Path) -> None:
    _drop(tmp_path, "a/x.csv")
    _drop(tmp_path, "a/y.json")
    src = LocalDropSource(tmp_path, include=["*.json"])
    assert [f.name for f in src.list().files] == ["a/y.json"]


def test_identity_changes_with_content(tmp_path: Path) -> None:
    path = _drop(tmp_path, "a/x.csv", b"1")
    src = LocalDropSource(tmp_path)
    first = src.stat("a/x.csv")
    path.write_bytes(b"12")
    os.utime(path, (first.mtime + 5, first.mtime + 5))
    second = src.stat("a/x.csv")
    assert first is not None and second is not None
    assert first.identity != second.identity


def test_ready_needs_two_equal_looks(tmp_path: Path) -> None:
    _drop(tmp_path, "a/x.csv")
    src = LocalDropSource(tmp_path)
    state: dict = {}
    t1 = poll(src, state)
    assert t1.ready == []
    t2 = poll(src, json.loads(json.dumps(t1.state)))  # the state survives a JSON round trip
    assert [f.name for f in t2.ready] == ["a/x.csv"]
    t3 = poll(src, t2.state)
    assert t3.ready == []


def test_done_marker_mode(tmp_path: Path) -> None:
    _drop(tmp_path, "a/x.csv")
    src = LocalDropSource(tmp_path, require_done_marker=True)
    state = None
    for _ in range(3):  # stable, but no marker: never taken
        tick = poll(src, state)
        assert tick.ready == []
        state = tick.state
    _drop(tmp_path, "a/x.csv.done", b"")
    tick = poll(src, state)
    assert [f.name for f in tick.ready] == ["a/x.csv"]


def test_fetch_is_capped_and_checks_listed_size(tmp_path: Path) -> None:
    _drop(tmp_path, "a/big.csv", b"x" * 100)
    src = LocalDropSource(tmp_path, max_file_bytes=50)
    with pytest.raises(FileTooLargeError):
        src.fetch("a/big.csv")
    listed = RemoteFile("a/big.csv", size=10, mtime=0.0)
    with pytest.raises(TransferError):
        LocalDropSource(tmp_path).fetch(listed)


def test_names_escaping_the_root_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "drops"
    _drop(tmp_path, "secret.csv", b"salary\n1\n")
    _drop(root, "a/ok.csv")
    (root / "a" / "link.csv").symlink_to(tmp_path / "secret.csv")
    src = LocalDropSource(root)
    for bad in ["../secret.csv", "/etc/passwd", "a/../../secret.csv", "a\\..\\x.csv", ""]:
        with pytest.raises(RemotePathError):
            src.fetch(bad)
    with pytest.raises(RemotePathError):
        src.fetch("a/link.csv")
    assert [f.name for f in src.list().files] == ["a/ok.csv"]


def test_safe_relpath_normalises() -> None:
    assert safe_relpath("./acme//x.csv") == "acme/x.csv"


def test_move_keeps_earlier_archives_and_marker(tmp_path: Path) -> None:
    _drop(tmp_path, "a/x.csv", b"one")
    _drop(tmp_path, "a/x.csv.done", b"")
    src = LocalDropSource(tmp_path)
    assert src.move("a/x.csv", "processed") == "processed/a/x.csv"
    assert (tmp_path / "processed/a/x.csv.done").exists()
    _drop(tmp_path, "a/x.csv", b"two")
    second = src.move("a/x.csv", "processed")
    assert second != "processed/a/x.csv"
    assert (tmp_path / "processed/a/x.csv").read_bytes() == b"one"
    assert (tmp_path / second).read_bytes() == b"two"
    assert src.list().files == []


def test_local_delivery_manifest_written_last(tmp_path: Path) -> None:
    target = LocalDelivery(tmp_path / "out")
    assert isinstance(target, DeliveryTarget)
    src_file = _drop(tmp_path, "report.json", b'{"rows": 3}')
    manifest = target.deliver({"employee.xml": b"<EF_Employee_List/>", "report.json": src_file}, "acme/run1")
    folder = tmp_path / "out" / "acme" / "run1"
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk == manifest
    for entry in manifest["files"]:
        data = (folder / entry["name"]).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert not list(folder.glob("*.part"))


def test_release_offers_a_file_again(tmp_path: Path) -> None:
    _drop(tmp_path, "a/x.csv")
    src = LocalDropSource(tmp_path)
    taken = poll(src, poll(src).state)
    assert [f.name for f in taken.ready] == ["a/x.csv"]
    assert poll(src, taken.state).ready == []
    again = poll(src, release(taken.state, taken.ready))  # e.g. the fetch failed: hand it back
    assert [f.name for f in again.ready] == ["a/x.csv"]


def test_fetch_to_streams_the_file_with_its_content_hash_and_the_same_guards(tmp_path: Path) -> None:
    from snapmap_pipeline.core.pipeline import content_hash

    payload = os.urandom(3 * 1024 * 1024 + 17)  # more than one block, not a whole number of them
    _drop(tmp_path / "drops", "a/big.csv", payload)
    src = LocalDropSource(tmp_path / "drops")
    dest = tmp_path / "out.csv"
    listed = src.stat("a/big.csv")
    assert src.fetch_to(listed, dest) == content_hash(payload) == content_hash(src.fetch(listed))
    assert dest.read_bytes() == payload

    with pytest.raises(FileTooLargeError):
        LocalDropSource(tmp_path / "drops", max_file_bytes=1024).fetch_to("a/big.csv", tmp_path / "x")
    stale = RemoteFile("a/big.csv", size=10, mtime=0.0)  # changed since it was listed
    with pytest.raises(TransferError):
        src.fetch_to(stale, tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # nothing partial left
