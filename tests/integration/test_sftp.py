"""SftpDropSource and SftpDelivery against a real OpenSSH sshd on loopback."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import pytest

from snapmap_pipeline.connectors import SftpDelivery, SftpDropSource, poll
from snapmap_pipeline.errors import (
    ConfigError,
    FileTooLargeError,
    HostKeyError,
    RemotePathError,
    TransferError,
)
from tests.integration.servers import SshdServer


@pytest.fixture()
def drop_root(sshd_server: SshdServer) -> Path:
    """A private folder under the shared server's root for this test."""
    root = sshd_server.root / secrets.token_hex(4)
    root.mkdir()
    return root


def _drop(root: Path, name: str, data: bytes) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_list_fetch_move_with_one_reused_connection(sshd_server: SshdServer, drop_root: Path) -> None:
    payload = b"id,name\n" + b"".join(b"%d,x\n" % i for i in range(20_000))
    _drop(drop_root, "acme/employees.csv", payload)
    _drop(drop_root, "acme/notes.pdf", b"%PDF")
    _drop(drop_root, "globex/2024/jobs.tsv", b"a\tb\n")
    _drop(drop_root, "processed/acme/old.csv", b"old")
    with SftpDropSource(**sshd_server.source_kwargs(root=str(drop_root))) as src:
        files = {f.name: f for f in src.list().files}
        assert sorted(files) == ["acme/employees.csv", "globex/2024/jobs.tsv"]
        assert files["acme/employees.csv"].size == len(payload)
        transport = src._client.get_transport()
        assert src.fetch(files["acme/employees.csv"]) == payload
        assert src.move("acme/employees.csv", "processed") == "processed/acme/employees.csv"
        assert src._client.get_transport() is transport  # one connection for the object's life
    assert (drop_root / "processed/acme/employees.csv").read_bytes() == payload
    assert not (drop_root / "acme/employees.csv").exists()


def test_stability_over_sftp(sshd_server: SshdServer, drop_root: Path) -> None:
    _drop(drop_root, "acme/a.csv", b"1,2\n")
    with SftpDropSource(**sshd_server.source_kwargs(root=str(drop_root))) as src:
        t1 = poll(src)
        t2 = poll(src, json.loads(json.dumps(t1.state)))
    assert t1.ready == []
    assert [f.name for f in t2.ready] == ["acme/a.csv"]


def test_fingerprint_instead_of_known_hosts(sshd_server: SshdServer, drop_root: Path) -> None:
    _drop(drop_root, "a/x.csv", b"x")
    kw = sshd_server.source_kwargs(root=str(drop_root), known_hosts=None)
    with SftpDropSource(**kw, host_key_fingerprint=sshd_server.host_key_fingerprint) as src:
        assert [f.name for f in src.list().files] == ["a/x.csv"]
    with pytest.raises(HostKeyError, match="does not match the configured fingerprint"):
        SftpDropSource(**kw, host_key_fingerprint="SHA256:" + "A" * 43).list()


def test_host_key_checking_cannot_be_turned_off(sshd_server: SshdServer) -> None:
    with pytest.raises(ConfigError, match="cannot be turned off"):
        SftpDropSource(**sshd_server.source_kwargs(known_hosts=None))


def test_unknown_host_key_is_refused(sshd_server: SshdServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError, match="unknown") as err:
        SftpDropSource(**sshd_server.source_kwargs(known_hosts=empty)).list()
    assert sshd_server.host_key_fingerprint in err.value.message


def test_fetch_cap(sshd_server: SshdServer, drop_root: Path) -> None:
    _drop(drop_root, "a/big.csv", b"x" * 5000)
    with (
        pytest.raises(FileTooLargeError),
        SftpDropSource(**sshd_server.source_kwargs(root=str(drop_root)), max_file_bytes=1000) as src,
    ):
        src.fetch("a/big.csv")


def test_fetch_to_streams_the_file_with_its_content_hash_and_the_same_guards(
    sshd_server: SshdServer, drop_root: Path, tmp_path: Path
) -> None:
    payload = secrets.token_bytes(2 * 1024 * 1024 + 40_000)  # blocks of requests, and a short last one
    _drop(drop_root, "a/big.csv", payload)
    with SftpDropSource(**sshd_server.source_kwargs(root=str(drop_root))) as src:
        listed = src.stat("a/big.csv")
        dest = tmp_path / "big.csv"
        assert src.fetch_to(listed, dest) == hashlib.sha256(payload).hexdigest()
        assert dest.read_bytes() == payload
        _drop(drop_root, "a/big.csv", payload + b"more")
        with pytest.raises(TransferError):
            src.fetch_to(listed, tmp_path / "changed")  # changed since it was listed
    with (
        pytest.raises(FileTooLargeError),
        SftpDropSource(**sshd_server.source_kwargs(root=str(drop_root)), max_file_bytes=1000) as src,
    ):
        src.fetch_to("a/big.csv", tmp_path / "capped")
    assert not (tmp_path / "changed").exists() and not (tmp_path / "capped").exists()


def test_listing_skips_links_out_of_the_root(
    sshd_server: SshdServer, drop_root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_bytes(b"secret")
    _drop(drop_root, "a/real.csv", b"ok")
    (drop_root / "a" / "inside.csv").symlink_to(drop_root / "a" / "real.csv")
    (drop_root / "a" / "escape.csv").symlink_to(outside)
    with SftpDropSource(**sshd_server.source_kwargs(root=str(drop_root))) as src:
        assert sorted(f.name for f in src.list().files) == ["a/inside.csv", "a/real.csv"]
        assert src.fetch("a/inside.csv") == b"ok"
        with pytest.raises(RemotePathError):
            src.fetch("a/escape.csv")


def test_sftp_delivery_is_atomic_with_manifest(sshd_server: SshdServer, drop_root: Path) -> None:
    out = drop_root / "outbound"
    out.mkdir()
    files = {"employee.xml": b"<EF_Employee_List/>" * 1000, "EMPLOYEE-MAIN.csv": b"EMPLOYEE_ID\n1\n"}
    with SftpDelivery(**sshd_server.source_kwargs(root=str(out))) as target:
        manifest = target.deliver(files, "acme/2024-05-01")
    folder = out / "acme/2024-05-01"
    assert sorted(p.name for p in folder.iterdir()) == ["EMPLOYEE-MAIN.csv", "employee.xml", "manifest.json"]
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    for entry in manifest["files"]:
        assert hashlib.sha256((folder / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]


def test_sftp_delivery_streams_a_file_from_disk(
    sshd_server: SshdServer, drop_root: Path, tmp_path: Path
) -> None:
    out = drop_root / "outbound"
    out.mkdir()
    feed = tmp_path / "employee.xml"
    feed.write_bytes(secrets.token_bytes(2 * 1024 * 1024 + 3))  # a streamed drop's feed: never in memory
    with SftpDelivery(**sshd_server.source_kwargs(root=str(out))) as target:
        manifest = target.deliver({"employee.xml": feed}, "acme/big")
    delivered = out / "acme/big/employee.xml"
    assert delivered.read_bytes() == feed.read_bytes()
    [entry] = manifest["files"]
    assert entry == {
        "name": "employee.xml",
        "bytes": feed.stat().st_size,
        "sha256": hashlib.sha256(feed.read_bytes()).hexdigest(),
    }
    assert not [p for p in delivered.parent.iterdir() if p.name.endswith(".part")]
