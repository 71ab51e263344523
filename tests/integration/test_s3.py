"""S3DropSource and S3Delivery against moto_server on loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from snapmap_pipeline.connectors import S3Delivery, S3DropSource, make_s3_client, poll
from snapmap_pipeline.errors import FileTooLargeError, RemotePathError, TransferError
from tests.integration.servers import S3Server


@pytest.fixture()
def s3(s3_server: S3Server) -> tuple[Any, str]:
    client = s3_server.client()
    return client, s3_server.new_bucket()


def test_list_fetch_move(s3: tuple[Any, str]) -> None:
    client, bucket = s3
    for key, body in {
        "in/acme/employees.csv": b"id\n1\n",
        "in/acme/employees.csv.done": b"",
        "in/acme/.tmp.csv": b"x",
        "in/processed/acme/old.csv": b"x",
        "in/globex/jobs.xlsx": b"PK",
        "other/acme/x.csv": b"x",
    }.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    src = S3DropSource(client, bucket, "in")
    files = {f.name: f for f in src.list().files}
    assert sorted(files) == ["acme/employees.csv", "globex/jobs.xlsx"]
    f = files["acme/employees.csv"]
    assert f.etag == hashlib.md5(b"id\n1\n").hexdigest()
    assert f.etag in f.identity
    assert src.fetch(f) == b"id\n1\n"
    assert src.move("acme/employees.csv", "processed") == "processed/acme/employees.csv"
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="in/")["Contents"]}
    assert "in/processed/acme/employees.csv" in keys
    assert "in/processed/acme/employees.csv.done" in keys
    assert "in/acme/employees.csv" not in keys
    with pytest.raises(RemotePathError):
        src.fetch("../other/acme/x.csv")


def test_modified_key_is_seen_again(s3: tuple[Any, str]) -> None:
    """The cursor is (LastModified, key): unlike get_s3_keys(since_key=…), a rewritten key comes back."""
    client, bucket = s3
    client.put_object(Bucket=bucket, Key="acme/a.csv", Body=b"v1")
    client.put_object(Bucket=bucket, Key="acme/b.csv", Body=b"v1")
    src = S3DropSource(client, bucket)
    first = src.list(limit=10)
    assert sorted(f.name for f in first.files) == ["acme/a.csv", "acme/b.csv"]
    assert src.list(since=first.cursor).files == []
    time.sleep(1.05)  # S3 LastModified has one-second resolution
    client.put_object(Bucket=bucket, Key="acme/a.csv", Body=b"v2, longer")
    again = src.list(since=first.cursor)
    assert [f.name for f in again.files] == ["acme/a.csv"]
    assert src.fetch(again.files[0]) == b"v2, longer"


def test_fetch_refuses_an_object_changed_since_listing(s3: tuple[Any, str]) -> None:
    client, bucket = s3
    client.put_object(Bucket=bucket, Key="a/x.csv", Body=b"v1")
    src = S3DropSource(client, bucket)
    listed = src.list().files[0]
    client.put_object(Bucket=bucket, Key="a/x.csv", Body=b"v2")
    with pytest.raises(TransferError):
        src.fetch(listed)


def test_fetch_cap(s3: tuple[Any, str]) -> None:
    client, bucket = s3
    client.put_object(Bucket=bucket, Key="a/x.csv", Body=b"x" * 2000)
    with pytest.raises(FileTooLargeError):
        S3DropSource(client, bucket, max_file_bytes=1000).fetch("a/x.csv")


def test_fetch_to_streams_the_object_with_its_content_hash_and_the_same_guards(
    s3: tuple[Any, str], tmp_path: Path
) -> None:
    client, bucket = s3
    payload = os.urandom(2 * 1024 * 1024 + 5)
    client.put_object(Bucket=bucket, Key="a/x.csv", Body=payload)
    src = S3DropSource(client, bucket)
    listed = src.list().files[0]
    dest = tmp_path / "x.csv"
    assert src.fetch_to(listed, dest) == hashlib.sha256(payload).hexdigest()
    assert dest.read_bytes() == payload

    with pytest.raises(FileTooLargeError):
        S3DropSource(client, bucket, max_file_bytes=1000).fetch_to("a/x.csv", tmp_path / "big")
    client.put_object(Bucket=bucket, Key="a/x.csv", Body=b"v2")
    with pytest.raises(TransferError):
        src.fetch_to(listed, tmp_path / "changed")  # its ETag no longer matches the listing
    assert not (tmp_path / "big").exists() and not (tmp_path / "changed").exists()


def test_stability_by_etag(s3: tuple[Any, str]) -> None:
    client, bucket = s3
    client.put_object(Bucket=bucket, Key="a/x.csv", Body=b"x")
    src = S3DropSource(client, bucket)
    t1 = poll(src)
    t2 = poll(src, json.loads(json.dumps(t1.state)))
    assert t1.ready == [] and [f.name for f in t2.ready] == ["a/x.csv"]


def test_delivery_single_put_with_checksums(s3_server: S3Server) -> None:
    client = s3_server.client(fresh=True)
    bucket = s3_server.new_bucket()
    sent: list[dict[str, str]] = []  # observe the wire: moto stores but does not verify checksums

    def capture(request: Any, **_: Any) -> None:
        if request.method == "PUT":
            headers = request.headers.items()
            sent.append({k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in headers})

    client.meta.events.register("before-send.s3.PutObject", capture)
    target = S3Delivery(client, bucket, "out")
    body = b"<EF_Employee_List/>" * 100
    manifest = target.deliver({"employee.xml": body}, "acme/run1")
    assert len(sent) == 2  # one put per file, plus the manifest: no multipart, no temp keys
    assert sent[0]["x-amz-checksum-sha256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert sent[0]["content-md5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    obj = client.get_object(Bucket=bucket, Key="out/acme/run1/employee.xml")
    assert obj["Body"].read() == body
    assert obj["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    stored = json.loads(client.get_object(Bucket=bucket, Key="out/acme/run1/manifest.json")["Body"].read())
    assert stored == manifest and manifest["files"][0]["bytes"] == len(body)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == ["out/acme/run1/employee.xml", "out/acme/run1/manifest.json"]


def test_make_s3_client_reads_the_environment(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    client = make_s3_client(endpoint_url=s3_server.endpoint_url)
    bucket = s3_server.new_bucket(client)
    assert S3DropSource(client, bucket).list().files == []


def test_accepts_a_dagster_aws_style_resource(s3_server: S3Server) -> None:
    class Resource:  # the shape of dagster_aws.s3.S3Resource: a get_client() method
        def get_client(self) -> Any:
            return s3_server.client()

    bucket = s3_server.new_bucket()
    assert S3DropSource(Resource(), bucket).list().files == []


def test_s3_artifacts_store_large_files_from_and_to_disk(s3: tuple[Any, str], tmp_path: Path) -> None:
    from snapmap_pipeline.defs.artifacts import S3ArtifactStore

    client, bucket = s3
    store = S3ArtifactStore(f"s3://{bucket}/art", client)
    payload = os.urandom(9 * 1024 * 1024)  # above boto3's multipart threshold
    with store.receive("drops/k/upload/x.csv") as dest:
        dest.write_bytes(payload)
    assert store.read_head("drops/k/upload/x.csv", 10) == payload[:10]
    with store.local_copy("drops/k/upload/x.csv") as local:
        assert local.read_bytes() == payload
    with pytest.raises(ValueError), store.receive("drops/k/upload/y.csv") as dest:
        dest.write_bytes(b"half")
        raise ValueError("the fetch failed")
    assert not store.exists("drops/k/upload/y.csv")  # a failed receive stores nothing
    store.write_bytes("drops/k/empty.csv", b"")
    assert store.read_head("drops/k/empty.csv", 10) == b""
    with store.staging("drops/k/out") as out:
        (out / "feed.xml").write_bytes(payload)
    assert client.get_object(Bucket=bucket, Key="art/drops/k/out/feed.xml")["Body"].read() == payload


def test_delivery_of_a_file_from_disk_keeps_the_checksums(s3_server: S3Server, tmp_path: Path) -> None:
    client = s3_server.client(fresh=True)
    bucket = s3_server.new_bucket()
    sent: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        if request.method == "PUT":
            sent.append(
                {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
            )

    client.meta.events.register("before-send.s3.PutObject", capture)
    feed = tmp_path / "employee.xml"
    feed.write_bytes(os.urandom(3 * 1024 * 1024 + 1))  # a streamed drop's feed, sent from disk
    body = feed.read_bytes()
    manifest = S3Delivery(client, bucket, "out").deliver({"employee.xml": feed}, "acme/big")
    assert len(sent) == 2  # still one put for the file (then the manifest)
    assert sent[0]["x-amz-checksum-sha256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert sent[0]["content-md5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    assert client.get_object(Bucket=bucket, Key="out/acme/big/employee.xml")["Body"].read() == body
    assert manifest["files"][0]["sha256"] == hashlib.sha256(body).hexdigest()
