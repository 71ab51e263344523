"""The artifacts store: uploaded bytes, frames, feeds and reports under one root, a local folder or
`s3://bucket/prefix`, behind one small interface so assets, the IO manager and retention never branch
on where it lives.

Layout (relative to the root)::

    drops/<partition key>/drop.json      manifest: tenant, source, path, hash, dropped_at, entity
    drops/<partition key>/upload/<name>  the bytes as dropped
    drops/<partition key>/out/           XML, Eightfold CSV, quarantine.csv, report.json, quality/
    frames/<asset>/<partition key>.*     what the IO manager stores (parquet for frames)
    daily/<tenant.entity>/<date>/        the day's snapshot feeds (ingest/update/delete XML)
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from snapmap_pipeline.core.retention import Aged
from snapmap_pipeline.errors import ConnectorError


class ArtifactStore:
    """Interface; see LocalArtifactStore and S3ArtifactStore."""

    root: str

    def uri(self, rel: str) -> str:
        raise NotImplementedError

    def read_bytes(self, rel: str) -> bytes:
        raise NotImplementedError

    def write_bytes(self, rel: str, data: bytes) -> str:
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def list(self, prefix: str) -> list[tuple[str, datetime]]:
        """Relative paths of the files under `prefix`, with their modification times (UTC)."""
        raise NotImplementedError

    def delete(self, prefix: str) -> int:
        """Delete one file or everything under a folder prefix; returns the number of files."""
        raise NotImplementedError

    @contextlib.contextmanager
    def staging(self, rel: str) -> Iterator[Path]:
        """A local folder whose contents end up at `rel` (written in place locally, uploaded for S3)."""
        raise NotImplementedError
        yield Path()  # pragma: no cover

    # -- large files: streamed, never held as bytes ----------------------------------------------
    def write_file(self, rel: str, path: Path) -> str:
        """Store the local file `path` at `rel`, copied in blocks (S3: a multipart upload)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def local_copy(self, rel: str) -> Iterator[Path]:
        """A local path holding the file at `rel` for the block (the file itself locally, a temp
        download for S3). Read it only."""
        raise NotImplementedError
        yield Path()  # pragma: no cover

    def read_head(self, rel: str, size: int) -> bytes:
        """At most the first `size` bytes of the file at `rel`."""
        raise NotImplementedError

    @contextlib.contextmanager
    def receive(self, rel: str) -> Iterator[Path]:
        """A local path to write a file to; stored at `rel` when the block ends without an error,
        never stored (nor left behind) otherwise. For a drop fetched block by block."""
        with tempfile.TemporaryDirectory(prefix="snapmap-receive-") as tmp:
            dest = Path(tmp) / Path(rel).name
            yield dest
            self.write_file(rel, dest)

    # -- shared helpers --------------------------------------------------------------------------
    def read_json(self, rel: str) -> dict[str, Any]:
        return json.loads(self.read_bytes(rel))

    def write_json(self, rel: str, payload: dict[str, Any]) -> str:
        return self.write_bytes(rel, json.dumps(payload, indent=2, default=str).encode())

    def drop_manifest(self, key: str) -> dict[str, Any] | None:
        rel = f"drops/{key}/drop.json"
        return self.read_json(rel) if self.exists(rel) else None

    def manifests(self) -> list[dict[str, Any]]:
        return [self.read_json(rel) for rel, _ in self.list("drops") if rel.endswith("/drop.json")]

    # -- retention (core.retention.RetentionStore) -----------------------------------------------
    def aged_items(self) -> Iterator[Aged]:
        for rel, mtime in self.list("drops"):
            if rel.endswith("/drop.json"):
                m = self.read_json(rel)
                created = _parse_ts(m.get("dropped_at")) or mtime
                yield Aged("drop", rel.split("/")[1], m.get("tenant"), created)
        seen: set[str] = set()
        for rel, _ in self.list("daily"):
            parts = rel.split("/")  # daily/<feed>/<date>/...
            if len(parts) < 4 or f"{parts[1]}/{parts[2]}" in seen:
                continue
            seen.add(f"{parts[1]}/{parts[2]}")
            with contextlib.suppress(ValueError):
                day = date.fromisoformat(parts[2])
                # a day's feed is as old as the end of that day
                created = datetime.combine(day, time.min, UTC) + timedelta(days=1)
                yield Aged("daily", f"{parts[1]}/{parts[2]}", parts[1].rsplit(".", 1)[0], created)

    def purge(self, item: Aged) -> None:
        if item.kind == "drop":
            self.delete(f"drops/{item.ref}")
            for rel, _ in self.list("frames"):
                if Path(rel).stem == item.ref:  # frames/<asset>/<key>.<ext>
                    self.delete(rel)
        else:
            feed, day = item.ref.split("/")
            self.delete(f"daily/{feed}/{day}")
            for rel, _ in self.list("frames"):
                if rel.endswith(f"/{day}/{feed}.parquet") or rel.endswith(f"/{day}/{feed}.pkl"):
                    self.delete(rel)


def _parse_ts(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class LocalArtifactStore(ArtifactStore):
    def __init__(self, root: str | Path) -> None:
        self.root = str(root)
        self._root = Path(root)

    def path(self, rel: str) -> Path:
        return self._root / rel

    def uri(self, rel: str) -> str:
        return str(self.path(rel))

    def read_bytes(self, rel: str) -> bytes:
        return self.path(rel).read_bytes()

    def write_bytes(self, rel: str, data: bytes) -> str:
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(p)  # readers never see half a file
        return str(p)

    def exists(self, rel: str) -> bool:
        return self.path(rel).exists()

    def write_file(self, rel: str, path: Path) -> str:
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".part")
        shutil.copyfile(path, tmp)
        tmp.replace(p)
        return str(p)

    @contextlib.contextmanager
    def local_copy(self, rel: str) -> Iterator[Path]:
        yield self.path(rel)

    def read_head(self, rel: str, size: int) -> bytes:
        with self.path(rel).open("rb") as fh:
            return fh.read(size)

    @contextlib.contextmanager
    def receive(self, rel: str) -> Iterator[Path]:
        # Written beside its final name and renamed: no second copy of a large drop.
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".part")
        try:
            yield tmp
            tmp.replace(p)
        finally:
            tmp.unlink(missing_ok=True)

    def list(self, prefix: str) -> list[tuple[str, datetime]]:
        base = self.path(prefix)
        if base.is_file():
            return [(prefix, datetime.fromtimestamp(base.stat().st_mtime, UTC))]
        if not base.is_dir():
            return []
        return sorted(
            (p.relative_to(self._root).as_posix(), datetime.fromtimestamp(p.stat().st_mtime, UTC))
            for p in base.rglob("*")
            if p.is_file()
        )

    def delete(self, prefix: str) -> int:
        p = self.path(prefix)
        if p.is_file():
            p.unlink()
            return 1
        if p.is_dir():
            n = sum(1 for q in p.rglob("*") if q.is_file())
            shutil.rmtree(p)
            return n
        return 0

    @contextlib.contextmanager
    def staging(self, rel: str) -> Iterator[Path]:
        p = self.path(rel)
        p.mkdir(parents=True, exist_ok=True)
        yield p


class S3ArtifactStore(ArtifactStore):
    """`s3://bucket/prefix` through boto3 (endpoint configurable, e.g. moto_server or MinIO)."""

    def __init__(self, root: str, client: Any) -> None:
        if not root.startswith("s3://"):
            raise ConnectorError(f"not an s3:// root: {root}", code="bad_artifacts_root")
        self.root = root.rstrip("/")
        bucket, _, prefix = root[5:].partition("/")
        self.bucket, self.prefix, self.client = bucket, prefix.strip("/"), client

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def uri(self, rel: str) -> str:
        return f"s3://{self.bucket}/{self._key(rel)}"

    def read_bytes(self, rel: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"].read()

    def write_bytes(self, rel: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data)
        return self.uri(rel)

    def write_file(self, rel: str, path: Path) -> str:
        self.client.upload_file(str(path), self.bucket, self._key(rel))  # multipart above 8 MB
        return self.uri(rel)

    @contextlib.contextmanager
    def local_copy(self, rel: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="snapmap-") as tmp:
            local = Path(tmp) / Path(rel).name
            self.client.download_file(self.bucket, self._key(rel), str(local))
            yield local

    def read_head(self, rel: str, size: int) -> bytes:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(rel), Range=f"bytes=0-{size - 1}")
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) == "InvalidRange":  # an empty file
                return b""
            raise
        return obj["Body"].read()

    def exists(self, rel: str) -> bool:
        resp = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(rel), MaxKeys=1)
        return any(o["Key"] == self._key(rel) for o in resp.get("Contents", []))

    def list(self, prefix: str) -> list[tuple[str, datetime]]:
        out = []
        start = len(self.prefix) + 1 if self.prefix else 0
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix).rstrip("/") + "/"
        )
        for page in pages:
            out += [(o["Key"][start:], o["LastModified"]) for o in page.get("Contents", [])]
        return sorted(out)

    def delete(self, prefix: str) -> int:
        keys = [self._key(rel) for rel, _ in self.list(prefix)] or (
            [self._key(prefix)] if self.exists(prefix) else []
        )
        for i in range(0, len(keys), 1000):  # the S3 API deletes at most 1,000 keys per call
            chunk = [{"Key": k} for k in keys[i : i + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk})
        return len(keys)

    @contextlib.contextmanager
    def staging(self, rel: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="snapmap-") as tmp:
            local = Path(tmp)
            yield local
            for p in local.rglob("*"):
                if p.is_file():  # uploaded from disk: a streamed drop's feeds never pass through memory
                    self.write_file(f"{rel}/{p.relative_to(local).as_posix()}", p)
