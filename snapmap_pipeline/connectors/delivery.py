"""Delivery targets: local folder, SFTP and S3. Every put is atomic (`name.part` then rename, or one S3
put with a checksum) and `manifest.json` is written last, so a reader never sees a half delivery as done.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko

from snapmap_pipeline.connectors.base import FETCH_BLOCK, PART_SUFFIX, escape_error, safe_relpath, within
from snapmap_pipeline.connectors.retry import TransientError
from snapmap_pipeline.connectors.s3 import S3Calls
from snapmap_pipeline.connectors.sftp import SftpSession
from snapmap_pipeline.errors import ConnectorError
from snapmap_pipeline.logs import get_logger

log = get_logger(__name__)

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class DeliveredFile:
    """One file delivered whole: its name at the target, its size and its SHA-256 (hex)."""

    name: str
    bytes: int
    sha256: str


class BaseDelivery:
    """`deliver()` on top of a subclass's atomic `put()`."""

    def put(self, name: str, data: bytes) -> DeliveredFile:
        raise NotImplementedError

    def put_file(self, name: str, path: Path) -> DeliveredFile:
        """`put` of a local file, read block by block where the target allows it (a streamed drop's
        feeds are as large as the drop)."""
        return self.put(name, Path(path).read_bytes())

    def deliver(self, files: Mapping[str, bytes | Path], folder: str) -> dict[str, Any]:
        """Put every file under `folder`, then `manifest.json` (files, bytes, sha256) last.

        >>> LocalDelivery(tmp).deliver({"employee.xml": b"<x/>"}, "acme/2024-05-01")  # doctest: +SKIP
        """
        folder = safe_relpath(folder) if folder.strip("/") else ""
        entries = []
        for name in sorted(files):
            content = files[name]
            rel = safe_relpath(name)
            if rel == MANIFEST:
                raise ConnectorError(
                    "A delivered file cannot be called manifest.json; that name is the "
                    "delivery's own manifest.",
                    code="manifest_clash",
                )
            where = f"{folder}/{rel}" if folder else rel
            done = (
                self.put_file(where, content)
                if isinstance(content, Path)
                else self.put(where, bytes(content))
            )
            entries.append({"name": rel, "bytes": done.bytes, "sha256": done.sha256})
        manifest = {
            "folder": folder,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": entries,
            "total_bytes": sum(e["bytes"] for e in entries),
        }
        body = json.dumps(manifest, indent=2).encode("utf-8")
        self.put(f"{folder}/{MANIFEST}" if folder else MANIFEST, body)
        log.info(
            "delivered",
            extra={
                "fields": {
                    "target": repr(self),
                    "folder": folder,
                    "files": len(entries),
                    "bytes": manifest["total_bytes"],
                }
            },
        )
        return manifest


def _file_blocks(path: Path) -> Iterator[bytes]:
    with Path(path).open("rb") as fh:
        while block := fh.read(FETCH_BLOCK):  # a loop over blocks of the file, not rows
            yield block


class LocalDelivery(BaseDelivery):
    """Deliver into a local folder (tests, shared mounts)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalDelivery(root={str(self.root)!r})"

    def put(self, name: str, data: bytes) -> DeliveredFile:
        """Write `name.part`, fsync, then rename over `name`: readers see the old file or the new one."""
        return self._write(safe_relpath(name), [data])

    def put_file(self, name: str, path: Path) -> DeliveredFile:
        """`put`, copied block by block."""
        rel = safe_relpath(name)
        blocks = _file_blocks(path)
        first = next(blocks, b"")  # a missing file fails here, before anything is written
        return self._write(rel, itertools.chain([first], blocks))

    def _write(self, rel: str, blocks: Iterable[bytes]) -> DeliveredFile:
        """The one atomic write: `rel.part`, hashed on the way and fsynced, then renamed over `rel`."""
        self.root.mkdir(parents=True, exist_ok=True)
        root = self.root.resolve()
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(root):
            raise escape_error(rel)
        part = target.with_name(target.name + PART_SUFFIX)
        sha, size = hashlib.sha256(), 0
        with part.open("wb") as fh:
            for block in blocks:  # blocks of a file, not rows
                sha.update(block)
                size += len(block)
                fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, target)
        return DeliveredFile(rel, size, sha.hexdigest())


class SftpDelivery(SftpSession, BaseDelivery):
    """Deliver to an SFTP server under `root`; same verified connection rules as the drop source."""

    def __enter__(self) -> SftpDelivery:
        return self

    def put(self, name: str, data: bytes) -> DeliveredFile:
        """Upload to `name.part`, check its size on the server, then rename over `name`."""
        return self._upload(safe_relpath(name), lambda: [data], len(data))

    def put_file(self, name: str, path: Path) -> DeliveredFile:
        """`put`, uploaded block by block (pipelined writes, the size checked before the rename)."""
        rel = safe_relpath(name)
        size = Path(path).stat().st_size  # a missing file fails here, before any connection
        return self._upload(rel, lambda: _file_blocks(path), size)

    def _upload(self, rel: str, blocks: Callable[[], Iterable[bytes]], size: int) -> DeliveredFile:
        """The one atomic upload: `blocks()` (called afresh on each retry) to `rel.part`, hashed on the
        way; its size checked on the server, then renamed over `rel`."""

        def go(sftp: paramiko.SFTPClient) -> DeliveredFile:
            parent = posixpath.dirname(rel)
            if parent:
                self._makedirs(sftp, parent)
                if not within(sftp.normalize(self._full(parent)), self._root()):
                    raise escape_error(rel)
            full = self._full(rel)
            part = full + PART_SUFFIX
            sha = hashlib.sha256()
            with sftp.open(part, "wb") as fh:
                fh.set_pipelined(True)
                for block in blocks():  # blocks of a file, not rows
                    sha.update(block)
                    fh.write(block)
            written = sftp.stat(part).st_size
            if written != size:
                raise TransientError(f"short write ({written} of {size} bytes)", kind="transfer")
            self._rename(sftp, part, full)
            return DeliveredFile(rel, size, sha.hexdigest())

        return self._run("put", go)


class S3Delivery(S3Calls, BaseDelivery):
    """Deliver to `s3://bucket/prefix/…` with one put_object each, checked by SHA-256 and MD5."""

    def __init__(
        self, client: Any, bucket: str, prefix: str = "", *, retries: int = 3, backoff: float = 0.5
    ) -> None:
        super().__init__(client, bucket, prefix, retries=retries, backoff=backoff)

    def put(self, name: str, data: bytes) -> DeliveredFile:
        """One put_object: S3 stores all of it or none, and rejects it if the checksums disagree."""
        return self._put_object(safe_relpath(name), [data], lambda: contextlib.nullcontext(data))

    def put_file(self, name: str, path: Path) -> DeliveredFile:
        """`put` of a file streamed from disk: its checksums from a first read, then one put_object
        with the file as the body (S3 still stores all of it or none)."""
        return self._put_object(safe_relpath(name), _file_blocks(path), lambda: Path(path).open("rb"))

    def _put_object(
        self, rel: str, blocks: Iterable[bytes], body: Callable[[], contextlib.AbstractContextManager[Any]]
    ) -> DeliveredFile:
        """The one upload: SHA-256 and MD5 of `blocks`, then one put_object of `body()` (opened afresh
        on each retry) that S3 rejects if the checksums disagree."""
        sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        size = 0
        for block in blocks:  # blocks of a file, not rows
            sha.update(block)
            md5.update(block)
            size += len(block)

        def go() -> None:
            with body() as stream:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self.key(rel),
                    Body=stream,
                    ContentLength=size,
                    ChecksumSHA256=base64.b64encode(sha.digest()).decode("ascii"),
                    ContentMD5=base64.b64encode(md5.digest()).decode("ascii"),
                    Metadata={"sha256": sha.hexdigest()},
                )

        self._call("put", go)
        return DeliveredFile(rel, size, sha.hexdigest())


def delivered_as_dict(d: DeliveredFile) -> dict[str, Any]:
    """Plain dict of a DeliveredFile, for metadata."""
    return asdict(d)
