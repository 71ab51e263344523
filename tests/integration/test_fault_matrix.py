"""The connector fault matrix (issue 6), against real servers. Each case proves nothing was lost or taken
twice: the drop is still on the source after a failure, and every file is fetched exactly once."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from snapmap_pipeline.connectors import (
    DropSource,
    LocalDelivery,
    LocalDropSource,
    S3DropSource,
    SftpDelivery,
    SftpDropSource,
    poll,
)
from snapmap_pipeline.errors import (
    AuthenticationError,
    HostKeyError,
    RemotePathError,
    SourceUnavailableError,
    TransferError,
)
from tests.integration.servers import AsyncSshServer, S3Server, SshdServer, free_port


def _drop(root: Path, name: str, data: bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _sensor(src: DropSource, ticks: int, *, limit: int = 500, state: dict | None = None) -> tuple[list, dict]:
    """What a sensor does each tick: list a bounded page, take the ready files, fetch each of them."""
    fetched: list[tuple[str, bytes]] = []
    state = state or {}
    for _ in range(ticks):
        tick = poll(src, state, limit=limit)
        fetched += [(f.name, src.fetch(f)) for f in tick.ready]
        state = tick.state
    return fetched, state


def _payload(n: int) -> bytes:
    return secrets.token_bytes(n)


@pytest.fixture()
def sftp_root(sshd_server: SshdServer) -> Path:
    root = sshd_server.root / secrets.token_hex(4)
    root.mkdir()
    return root


# 1 -------------------------------------------------------------------------------------------------
def test_1_server_down_retries_then_clear_error_and_file_stays(
    sshd_factory: Callable[[], SshdServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = sshd_factory()
    data = b"id\n1\n"
    path = _drop(server.root, "acme/emp.csv", data)
    server.stop()
    caplog.set_level(logging.WARNING, logger="snapmap")
    src = SftpDropSource(**server.source_kwargs(retries=3, backoff=0.02))
    with pytest.raises(SourceUnavailableError, match="unreachable after 3 attempt") as err:
        src.list()
    assert "stay on the source" in err.value.message
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2  # 3 attempts = 2 retries, with backoff
    assert path.read_bytes() == data  # nothing moved or lost

    server.start()  # the server comes back on the same port: the next tick takes the file
    with src:
        fetched, _ = _sensor(src, 2)
    assert fetched == [("acme/emp.csv", data)]


def test_1_s3_endpoint_down(s3_server: S3Server) -> None:
    import boto3
    from botocore.config import Config

    dead = boto3.session.Session().client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(SourceUnavailableError, match="unreachable after 2 attempt"):
        S3DropSource(dead, "bucket", retries=2, backoff=0.01).list()


# 2 -------------------------------------------------------------------------------------------------
def test_2_connection_drop_mid_download_returns_nothing_partial(asyncssh_server: AsyncSshServer) -> None:
    data = _payload(1_000_000)
    _drop(asyncssh_server.root, "acme/emp.csv", data)
    asyncssh_server.faults.cut_read_at = len(data) // 2
    asyncssh_server.faults.cuts = 1
    with SftpDropSource(**asyncssh_server.source_kwargs(retries=1)) as src:
        listed = src.list().files[0]
        with pytest.raises(TransferError, match="nothing partial was kept"):
            src.fetch(listed)
        assert asyncssh_server.faults.cut_count == 1  # the link really was cut half-way
        assert src.fetch(listed) == data  # the next attempt reconnects and gets all of it
    assert (asyncssh_server.root / "acme/emp.csv").read_bytes() == data


def test_2_retry_inside_one_fetch(asyncssh_server: AsyncSshServer) -> None:
    data = _payload(600_000)
    _drop(asyncssh_server.root, "acme/emp.csv", data)
    asyncssh_server.faults.cut_read_at = len(data) // 2
    with SftpDropSource(**asyncssh_server.source_kwargs(retries=3)) as src:
        assert src.fetch("acme/emp.csv") == data
    assert asyncssh_server.faults.cut_count == 1


# 3 -------------------------------------------------------------------------------------------------
def _growing(root: Path, src: DropSource) -> None:
    path = _drop(root, "acme/emp.csv", b"id,name\n")
    state: dict[str, Any] = {}
    for i in range(3):  # still being written: every look differs from the one before
        tick = poll(src, state)
        assert tick.ready == [], f"taken while growing (look {i})"
        state = tick.state
        with path.open("ab") as fh:
            fh.write(b"%d,someone\n" % i)
    fetched, _ = _sensor(src, 2, state=state)
    assert fetched == [("acme/emp.csv", path.read_bytes())]


def test_3_growing_file_local(tmp_path: Path) -> None:
    _growing(tmp_path, LocalDropSource(tmp_path))


def test_3_growing_file_sftp(sshd_server: SshdServer, sftp_root: Path) -> None:
    with SftpDropSource(**sshd_server.source_kwargs(root=str(sftp_root))) as src:
        _growing(sftp_root, src)


def test_3_growing_object_s3(s3_server: S3Server) -> None:
    client, bucket = s3_server.client(), s3_server.new_bucket()
    src = S3DropSource(client, bucket)
    body = b"id\n"
    client.put_object(Bucket=bucket, Key="acme/emp.csv", Body=body)
    state: dict[str, Any] = {}
    for i in range(3):  # rewritten between looks (a tool re-uploading): the ETag keeps changing
        tick = poll(src, state)
        assert tick.ready == []
        state = tick.state
        body += b"%d\n" % i
        client.put_object(Bucket=bucket, Key="acme/emp.csv", Body=body)
    fetched, _ = _sensor(src, 2, state=state)
    assert fetched == [("acme/emp.csv", body)]


# 4 -------------------------------------------------------------------------------------------------
def _listed_twice_fetched_once(src: DropSource, redrop: Callable[[], None]) -> None:
    fetched, state = _sensor(src, 4)
    assert [n for n, _ in fetched] == ["acme/emp.csv"]
    again, state = _sensor(src, 3, state={"cursor": None, "stability": state["stability"]})
    assert again == []  # even with the listing cursor reset, the identity was already taken
    redrop()  # the same name with new content is a new drop
    newer, _ = _sensor(src, 3, state=state)
    assert [n for n, _ in newer] == ["acme/emp.csv"] and newer[0][1] != fetched[0][1]


def test_4_same_file_two_ticks_local(tmp_path: Path) -> None:
    path = _drop(tmp_path, "acme/emp.csv", b"v1\n")

    def redrop() -> None:
        path.write_bytes(b"v2, new content\n")

    _listed_twice_fetched_once(LocalDropSource(tmp_path), redrop)


def test_4_same_file_two_ticks_sftp(sshd_server: SshdServer, sftp_root: Path) -> None:
    path = _drop(sftp_root, "acme/emp.csv", b"v1\n")

    def redrop() -> None:
        path.write_bytes(b"v2, new content\n")

    with SftpDropSource(**sshd_server.source_kwargs(root=str(sftp_root))) as src:
        _listed_twice_fetched_once(src, redrop)


def test_4_same_file_two_ticks_s3(s3_server: S3Server) -> None:
    client, bucket = s3_server.client(), s3_server.new_bucket()
    client.put_object(Bucket=bucket, Key="acme/emp.csv", Body=b"v1\n")
    src = S3DropSource(client, bucket)
    fetched, state = _sensor(src, 3)
    client.put_object(Bucket=bucket, Key="acme/emp.csv", Body=b"v1\n")  # same bytes uploaded again
    again, state = _sensor(src, 3, state=state)
    assert [n for n, _ in fetched] == ["acme/emp.csv"] and again == []
    client.put_object(Bucket=bucket, Key="acme/emp.csv", Body=b"v2, new content\n")
    newer, _ = _sensor(src, 3, state=state)
    assert newer == [("acme/emp.csv", b"v2, new content\n")]


# 5 -------------------------------------------------------------------------------------------------
def test_5_host_key_change_is_refused(sshd_factory: Callable[[], SshdServer]) -> None:
    server = sshd_factory()
    path = _drop(server.root, "acme/emp.csv", b"id\n1\n")
    with SftpDropSource(**server.source_kwargs()) as src:
        assert [f.name for f in src.list().files] == ["acme/emp.csv"]
    old = server.host_key_fingerprint
    server.stop()
    server.rotate_host_key()  # same host and port, new key: what a man-in-the-middle looks like
    server.start()
    with pytest.raises(HostKeyError, match="CHANGED") as err:
        SftpDropSource(**server.source_kwargs()).list()
    assert old in err.value.message and server.host_key_fingerprint in err.value.message
    assert "known_hosts" in err.value.message
    assert path.exists()


# 6 -------------------------------------------------------------------------------------------------
def test_6_wrong_password_sshd(
    sshd_server: SshdServer, sftp_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "S3cr3t-" + secrets.token_hex(12)
    caplog.set_level(logging.DEBUG)  # paramiko's own debug lines included
    kw = sshd_server.source_kwargs(root=str(sftp_root), pkey_path=None, password=secret, retries=3)
    src = SftpDropSource(**kw)
    with pytest.raises(AuthenticationError, match="refused the login") as err:
        src.list()
    assert secret not in str(err.value) and secret not in repr(err.value.to_dict())
    assert secret not in repr(src)
    assert secret not in caplog.text
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]  # logins are never retried


def test_6_wrong_key_sshd(sshd_server: SshdServer, tmp_path: Path) -> None:
    from tests.integration.servers import make_keypair

    stranger = make_keypair(tmp_path / "stranger")
    with pytest.raises(AuthenticationError, match=r"\(key\)"):
        SftpDropSource(**sshd_server.source_kwargs(pkey_path=stranger.private_path)).list()


def test_6_wrong_password_asyncssh(asyncssh_server: AsyncSshServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "not-" + asyncssh_server.password
    with pytest.raises(AuthenticationError) as err:
        SftpDropSource(**asyncssh_server.source_kwargs(password=secret)).list()
    assert secret not in str(err.value) and secret not in caplog.text


S3_ALL = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'


def test_6_wrong_s3_credentials(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """moto_server enforcing IAM: after the first 4 calls (which make a user, a key and its policy)
    every request must be signed by a known key."""
    import boto3

    caplog.set_level(logging.DEBUG)
    server = S3Server(workdir=tmp_path, env={"INITIAL_NO_AUTH_ACTION_COUNT": "4"}).start()
    try:

        def client(service: str, key_id: str, secret: str) -> Any:
            return boto3.session.Session().client(
                service,
                endpoint_url=server.endpoint_url,
                region_name=server.region,
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
            )

        iam = client("iam", "testing", "testing")
        iam.create_user(UserName="snapmap")
        policy = iam.create_policy(PolicyName="s3-all", PolicyDocument=S3_ALL)["Policy"]["Arn"]
        iam.attach_user_policy(UserName="snapmap", PolicyArn=policy)
        key = iam.create_access_key(UserName="snapmap")["AccessKey"]
        good = client("s3", key["AccessKeyId"], key["SecretAccessKey"])
        good.create_bucket(Bucket="drops")
        good.put_object(Bucket="drops", Key="acme/workers.csv", Body=b"id\n1\n")
        assert [f.name for f in S3DropSource(good, "drops").list().files] == ["acme/workers.csv"]

        wrong_secret = "wrong-" + secrets.token_hex(16)
        caplog.clear()  # from here on, nothing logged (any logger, DEBUG included) may hold a secret
        for key_id in (key["AccessKeyId"], "AKIA" + secrets.token_hex(8).upper()):  # known id, unknown id
            src = S3DropSource(client("s3", key_id, wrong_secret), "drops", retries=3, backoff=0.01)
            with pytest.raises(AuthenticationError, match="refused") as err:
                src.list()
            assert err.value.details["s3_code"] in {"SignatureDoesNotMatch", "InvalidAccessKeyId"}
            assert wrong_secret not in str(err.value) and wrong_secret not in repr(err.value.to_dict())
        assert wrong_secret not in caplog.text and key["SecretAccessKey"] not in caplog.text
    finally:
        server.stop()


# 7 -------------------------------------------------------------------------------------------------
BAD_NAMES = ["../outside.csv", "acme/../../outside.csv", "/etc/passwd", "acme/..\\..\\x.csv"]


def test_7_escaping_names_refused_sftp(sshd_server: SshdServer, sftp_root: Path, tmp_path: Path) -> None:
    outside = sftp_root.parent / f"outside-{sftp_root.name}.csv"
    outside.write_bytes(b"not yours")
    _drop(sftp_root, "acme/ok.csv", b"ok")
    (sftp_root / "acme" / "link.csv").symlink_to(outside)
    (sftp_root / "acme" / "dirlink").symlink_to(sftp_root.parent)
    with SftpDropSource(**sshd_server.source_kwargs(root=str(sftp_root))) as src:
        for bad in [*BAD_NAMES, "acme/link.csv", f"acme/dirlink/{outside.name}"]:
            with pytest.raises(RemotePathError):
                src.fetch(bad)
            with pytest.raises(RemotePathError):
                src.move(bad, "processed")
        assert [f.name for f in src.list().files] == ["acme/ok.csv"]
    with SftpDelivery(**sshd_server.source_kwargs(root=str(sftp_root))) as target:
        for bad in BAD_NAMES:
            with pytest.raises(RemotePathError):
                target.put(bad, b"x")
        with pytest.raises(RemotePathError):
            target.put("acme/dirlink/evil.csv", b"x")
    assert outside.read_bytes() == b"not yours"
    assert not (sftp_root.parent / "evil.csv").exists()


def test_7_escaping_names_refused_local_and_s3(tmp_path: Path, s3_server: S3Server) -> None:
    client, bucket = s3_server.client(), s3_server.new_bucket()
    for src in (LocalDropSource(tmp_path), S3DropSource(client, bucket, "drops")):
        for bad in BAD_NAMES:
            with pytest.raises(RemotePathError):
                src.fetch(bad)
    for bad in BAD_NAMES:
        with pytest.raises(RemotePathError):
            LocalDelivery(tmp_path / "out").put(bad, b"x")


# 8 -------------------------------------------------------------------------------------------------
def test_8_delivery_interrupted_half_way(asyncssh_server: AsyncSshServer) -> None:
    big = _payload(800_000)
    files = {"a-report.json": b'{"rows": 2}', "employee.xml": big}
    asyncssh_server.faults.cut_write_at = len(big) // 2
    out = asyncssh_server.root / "outbound"
    with SftpDelivery(**asyncssh_server.source_kwargs(root="/outbound", retries=1)) as target:
        (out).mkdir()
        with pytest.raises(TransferError):
            target.deliver(files, "acme/run1")
        folder = out / "acme" / "run1"
        assert asyncssh_server.faults.cut_count == 1
        assert not (folder / "employee.xml").exists()  # only a .part: nothing complete-looking
        assert not (folder / "manifest.json").exists()  # and no manifest, so the delivery is not done
        manifest = target.deliver(files, "acme/run1")  # the retry delivers it whole
    assert (folder / "employee.xml").read_bytes() == big
    assert sorted(p.name for p in folder.iterdir()) == ["a-report.json", "employee.xml", "manifest.json"]
    assert {e["name"]: e["sha256"] for e in manifest["files"]} == {
        n: hashlib.sha256(b).hexdigest() for n, b in files.items()
    }


def test_8_local_delivery_interrupted_leaves_no_manifest(tmp_path: Path) -> None:
    target = LocalDelivery(tmp_path / "out")
    missing = tmp_path / "not-written-yet.csv"
    with pytest.raises(FileNotFoundError):
        target.deliver({"a.xml": b"<a/>", "b.csv": missing}, "acme/run1")
    folder = tmp_path / "out" / "acme" / "run1"
    assert not (folder / "manifest.json").exists()
    missing.write_bytes(b"ID\n1\n")
    manifest = target.deliver({"a.xml": b"<a/>", "b.csv": missing}, "acme/run1")
    assert (folder / "manifest.json").exists() and len(manifest["files"]) == 2
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


# 9 -------------------------------------------------------------------------------------------------
N_FILES = 1000
LIMIT = 200


def _names() -> list[str]:
    return [f"tenant{i % 7}/export-{i:04d}.csv" for i in range(N_FILES)]


def _thousand(src: DropSource) -> None:
    taken: list[str] = []
    state: dict[str, Any] = {}
    ticks = 0
    while ticks < 20:
        ticks += 1
        page = src.list(since=state.get("cursor"), limit=LIMIT)
        assert len(page.files) <= LIMIT  # the per-tick bound
        ready, stability = src.ready(page.files, state.get("stability"))
        taken += [f.name for f in ready]
        state = {"cursor": page.cursor, "stability": stability}
        if len(taken) >= N_FILES and not stability["pending"]:
            break
    assert len(taken) == len(set(taken)), "a file was taken twice"
    assert sorted(taken) == sorted(_names()), "a file was missed"
    assert ticks <= N_FILES // LIMIT + 2


def test_9_thousand_files_local(tmp_path: Path) -> None:
    for name in _names():
        _drop(tmp_path, name, b"x")
    _thousand(LocalDropSource(tmp_path))


def test_9_thousand_files_sftp(sshd_server: SshdServer, sftp_root: Path) -> None:
    for name in _names():
        _drop(sftp_root, name, b"x")
    with SftpDropSource(**sshd_server.source_kwargs(root=str(sftp_root))) as src:
        _thousand(src)


def test_9_thousand_files_s3(s3_server: S3Server) -> None:
    client, bucket = s3_server.client(), s3_server.new_bucket()
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        list(pool.map(lambda n: client.put_object(Bucket=bucket, Key=f"in/{n}", Body=b"x"), _names()))
    _thousand(S3DropSource(client, bucket, "in", page_size=500))  # two ListObjectsV2 pages per tick
