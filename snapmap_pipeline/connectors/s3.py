"""S3 (and S3-compatible) drop source. Lists by (LastModified, key) so modified keys are seen again,
and puts the ETag in each file's identity. Takes a boto3 client built by the caller (a dagster-aws
S3Resource's `get_client()` works too); never imports Dagster."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from snapmap_pipeline.connectors.base import (
    DEFAULT_INCLUDE,
    FETCH_BLOCK,
    BaseDropSource,
    Destination,
    RemoteFile,
    archive_name,
    changed_since_listed,
    gone,
    is_candidate,
    safe_relpath,
    short_read,
    sized,
    skip_dir,
    too_large,
)
from snapmap_pipeline.connectors.retry import TransientError, with_retries
from snapmap_pipeline.errors import (
    AuthenticationError,
    ConfigError,
    SourceUnavailableError,
    TransferError,
)
from snapmap_pipeline.logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")

_AUTH_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "UnrecognizedClientException",
}
_TRANSIENT_CODES = {
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "503",
    "500",
    "ThrottlingException",
    "RequestTimeTooSkewed",
}
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}


def make_s3_client(endpoint_url: str | None = None, region: str | None = None, *, timeout: float = 10) -> Any:
    """A boto3 S3 client; credentials come from the environment (`AWS_ACCESS_KEY_ID`, …) or boto3's
    default chain (instance role, web identity), never from code or settings files.

    `endpoint_url` points at an S3-compatible store (MinIO, moto, …).
    """
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    config = Config(
        connect_timeout=timeout, read_timeout=timeout, retries={"mode": "standard", "max_attempts": 3}
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def resolve_client(client: Any) -> Any:
    """Accept a boto3 client, or anything with `get_client()` (dagster-aws' S3Resource)."""
    if hasattr(client, "list_objects_v2"):
        return client
    if hasattr(client, "get_client"):
        return client.get_client()
    raise ConfigError("Expected a boto3 S3 client or an S3Resource with get_client().")


class S3Calls:
    """Error mapping and retries shared by the S3 source and delivery."""

    def __init__(self, client: Any, bucket: str, prefix: str, *, retries: int, backoff: float) -> None:
        self.client = resolve_client(client)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.retries = max(1, int(retries))
        self.backoff = backoff

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bucket={self.bucket!r}, prefix={self.prefix!r})"

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        def attempt() -> T:
            try:
                return fn()
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in _AUTH_CODES:
                    raise AuthenticationError(
                        f"S3 refused the request to {self.where} ({code}). Check the AWS credentials in the "
                        "environment and the bucket policy (the secret is not shown).",
                        bucket=self.bucket,
                        s3_code=code,
                    ) from None
                if code == "NoSuchBucket":
                    raise ConfigError(
                        f"Bucket {self.bucket!r} does not exist; fix the bucket setting.", bucket=self.bucket
                    ) from None
                if code in _TRANSIENT_CODES:
                    raise TransientError(f"S3 {code}", kind="unavailable") from None
                raise
            except BotoCoreError as exc:
                name = type(exc).__name__
                kind = (
                    "transfer"
                    if "Read" in name or "Stream" in name or "Incomplete" in name
                    else "unavailable"
                )
                raise TransientError(name, kind=kind) from None

        try:
            return with_retries(attempt, attempts=self.retries, backoff=self.backoff, what=what)
        except TransientError as exc:
            if exc.kind == "transfer":
                raise TransferError(
                    f"S3 {what} from {self.where} was cut off after {self.retries} attempt(s); "
                    "nothing partial was kept. It will be tried again on the next tick.",
                    bucket=self.bucket,
                    op=what,
                ) from None
            raise SourceUnavailableError(
                f"S3 endpoint for {self.where} is unreachable after {self.retries} attempt(s) ({exc}). Files "
                "stay on the source; check the endpoint URL and the network.",
                bucket=self.bucket,
                op=what,
            ) from None


class S3DropSource(S3Calls, BaseDropSource):
    """Drops under `s3://bucket/prefix/<tenant>/…`.

    >>> src = S3DropSource(make_s3_client(), "hr-drops", "inbound")  # doctest: +SKIP
    >>> page = src.list(limit=500)  # doctest: +SKIP
    """

    order = "mtime"

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        *,
        include: Sequence[str] = DEFAULT_INCLUDE,
        require_done_marker: bool = False,
        max_file_bytes: int | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        page_size: int = 1000,
    ) -> None:
        S3Calls.__init__(self, client, bucket, prefix, retries=retries, backoff=backoff)
        BaseDropSource.__init__(
            self, include=include, require_done_marker=require_done_marker, max_file_bytes=max_file_bytes
        )
        self.page_size = page_size  # keys per ListObjectsV2 request (S3's maximum is 1000)

    def _rel(self, key: str) -> str | None:
        if self.prefix:
            if not key.startswith(self.prefix + "/"):
                return None
            key = key[len(self.prefix) + 1 :]
        return key or None

    def _walk(self) -> list[RemoteFile]:
        def go() -> list[RemoteFile]:
            out: list[RemoteFile] = []
            paginator = self.client.get_paginator("list_objects_v2")
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.prefix:
                kwargs["Prefix"] = self.prefix + "/"
            for page in paginator.paginate(**kwargs, PaginationConfig={"PageSize": self.page_size}):
                for obj in page.get("Contents", []):
                    rel = self._rel(obj["Key"])
                    if rel is None or rel.endswith("/") or (("/" in rel) and skip_dir(rel.rsplit("/", 1)[0])):
                        continue
                    if not is_candidate(rel, self.include):
                        continue
                    out.append(self._file(rel, obj["Size"], obj["LastModified"], obj.get("ETag")))
            return out

        return self._call("list", go)

    @staticmethod
    def _file(rel: str, size: int, modified: Any, etag: str | None) -> RemoteFile:
        return RemoteFile(
            name=rel, size=int(size), mtime=modified.timestamp(), etag=(etag or "").strip('"') or None
        )

    def stat(self, name: str) -> RemoteFile | None:
        rel = safe_relpath(name)

        def go() -> RemoteFile | None:
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self.key(rel))
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) in _NOT_FOUND:
                    return None
                raise
            return self._file(rel, head["ContentLength"], head["LastModified"], head.get("ETag"))

        return self._call("stat", go)

    def _exists(self, name: str) -> bool:
        return self.stat(name) is not None

    def _get(self, rel: str, listed: RemoteFile | None) -> tuple[Any, int]:
        """(get_object response, size) after the not-found, changed-since-listed and size guards."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(rel)}
        if listed is not None and listed.etag:
            kwargs["IfMatch"] = f'"{listed.etag}"'
        try:
            obj = self.client.get_object(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND:
                raise gone(rel, self.where) from None
            if code in ("PreconditionFailed", "412"):
                raise changed_since_listed(rel) from None
            raise
        size = int(obj["ContentLength"])
        if size > self.max_file_bytes:
            obj["Body"].close()
            raise too_large(rel, size, self.max_file_bytes)
        return obj, size

    def _fetch(self, rel: str, listed: RemoteFile | None, take: Callable[[Iterable[bytes]], T]) -> T:
        """`take` the object's blocks after the guards; a listed object must still have its ETag. A cut
        or short read is retried from the start."""

        def go() -> T:
            obj, size = self._get(rel, listed)
            return take(sized(_body_blocks(obj["Body"]), size, lambda got: short_read(got, size)))

        return self._call("fetch", go)

    def move(self, name: str, to: Destination) -> str:
        """Archive under `<prefix>/<to>/…` (copy, then delete), with the `.done` marker."""
        rel = safe_relpath(name)
        dest = archive_name(rel, to, lambda d: self.stat(d) is not None)

        def go() -> str:
            pairs = [(rel, dest)]
            if self.stat(rel + ".done") is not None:
                pairs.append((rel + ".done", dest + ".done"))
            for src, dst in pairs:
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=self.key(dst),
                    CopySource={"Bucket": self.bucket, "Key": self.key(src)},
                )
                self.client.delete_object(Bucket=self.bucket, Key=self.key(src))
            return dest

        out = self._call("move", go)
        log.info("moved drop", extra={"fields": {"path": rel, "to": out}})
        return out


def _body_blocks(body: Any) -> Iterator[bytes]:
    """The response body, FETCH_BLOCK at a time. Only the read sits in the `try`: a failing read is a cut
    transfer (retried), while an error of the caller's write passes through as it is."""
    chunks = body.iter_chunks(FETCH_BLOCK)
    while True:  # blocks of the body, not rows
        try:
            block = next(chunks, None)
        except (OSError, BotoCoreError) as exc:
            raise TransientError(type(exc).__name__, kind="transfer") from None
        if block is None:
            return
        yield block
