"""What every drop source and delivery target shares: the file record, bounded listing pages with an
opaque cursor, the two-look stability rule, the remote-path guard and the one fetch path (guards, block
stream, whole or streamed to a file). No Dagster imports here."""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from snapmap_pipeline.connectors.retry import TransientError
from snapmap_pipeline.errors import ConnectorError, FileTooLargeError, RemotePathError, TransferError
from snapmap_pipeline.logs import get_logger
from snapmap_pipeline.settings import get_settings

log = get_logger(__name__)
T = TypeVar("T")

DEFAULT_INCLUDE: tuple[str, ...] = ("*.csv", "*.xlsx", "*.xls", "*.txt", "*.tsv")
ARCHIVE_DIRS: tuple[str, ...] = ("processed", "failed")
DONE_SUFFIX = ".done"
PART_SUFFIX = ".part"
MAX_TAKEN = 20_000  # identities remembered as already handed out when no full listing is at hand
FETCH_BLOCK = 1024 * 1024  # `fetch_to` moves this much at a time: memory stays flat whatever the size

Destination = Literal["processed", "failed"]


@dataclass(frozen=True)
class RemoteFile:
    """One dropped file as listed. `name` is relative to the source root, '/'-separated."""

    name: str
    size: int
    mtime: float | None = None
    etag: str | None = None

    @property
    def identity(self) -> str:
        """Name, size and ETag (or mtime): changes whenever the content may have changed."""
        version = self.etag if self.etag else f"{self.mtime or 0:.6f}"
        return f"{self.name}|{self.size}|{version}"

    @property
    def tenant(self) -> str | None:
        """The first folder of the name (drops are laid out one folder per tenant), or None."""
        head, sep, _ = self.name.partition("/")
        return head if sep else None

    @property
    def signature(self) -> list[Any]:
        """What must stay equal across two looks for the file to count as stable."""
        return [self.size, self.etag if self.etag else self.mtime]


@dataclass(frozen=True)
class ListPage:
    """One bounded listing page and the cursor to pass as `since` next time."""

    files: list[RemoteFile]
    cursor: str | None


def short_id(identity: str) -> str:
    """A 16-hex digest of an identity, to keep cursors and sensor state small."""
    return hashlib.sha1(identity.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


# -- the remote-path guard ---------------------------------------------------------------------------
def safe_relpath(name: str) -> str:
    """Normalise a name relative to the root; refuse absolute paths, `..` and odd characters.

    >>> safe_relpath("acme/./drop.csv")
    'acme/drop.csv'
    """
    if not isinstance(name, str) or not name.strip():
        raise RemotePathError("An empty remote name was given; pass a path relative to the drop root.")
    if "\x00" in name or "\\" in name:
        raise RemotePathError(
            "Remote name contains a NUL or a backslash; rename the file on the source.", path=name
        )
    if name.startswith("/"):
        raise RemotePathError(
            "Absolute remote names are refused; names must be relative to the drop root.", path=name
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts or not parts:
        raise RemotePathError(
            "Remote name escapes the drop root with '..'; it was refused. Rename the file on the source.",
            path=name,
        )
    return "/".join(parts)


def within(path: str, root: str) -> bool:
    """True when a normalised posix `path` is `root` or below it."""
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root == "/" else root + "/")


def escape_error(name: str) -> RemotePathError:
    return RemotePathError(
        "Remote name resolves outside the drop root (a symlink or '..'); it was refused. "
        "Remove the link on the source or point the connector at the real folder.",
        path=name,
    )


def is_candidate(name: str, include: Sequence[str]) -> bool:
    """Whether a listed name is a drop to consider: not archived, hidden, partial or a marker."""
    parts = name.split("/")
    if parts[0] in ARCHIVE_DIRS and len(parts) > 1:
        return False
    if any(p.startswith(".") for p in parts):
        return False
    base = parts[-1].lower()
    if base.endswith(PART_SUFFIX) or base.endswith(DONE_SUFFIX):
        return False
    return any(fnmatch.fnmatchcase(base, pat.lower()) for pat in include)


def skip_dir(rel_dir: str) -> bool:
    """Folders never walked: archives at the top and hidden folders anywhere."""
    parts = rel_dir.split("/")
    return (len(parts) == 1 and parts[0] in ARCHIVE_DIRS) or any(p.startswith(".") for p in parts)


# -- cursors -----------------------------------------------------------------------------------------
@dataclass
class ListCursor:
    """The opaque `since` string, decoded.

    Two orders exist. `mtime` (S3): (LastModified, key) ascending; `at` keeps the ids already returned at
    exactly `m`, so ties across pages and keys modified within the same second are neither missed nor
    doubled. `name` (local, SFTP): a sweep by name that wraps around, because SFTP clients such as WinSCP
    preserve old mtimes on upload and an mtime cursor would silently skip those files.
    """

    order: Literal["mtime", "name"]
    m: float | None = None
    at: list[str] = field(default_factory=list)
    after: str | None = None

    def encode(self) -> str:
        if self.order == "mtime":
            return json.dumps({"o": "mtime", "m": self.m, "at": self.at}, separators=(",", ":"))
        return json.dumps({"o": "name", "after": self.after}, separators=(",", ":"))

    @classmethod
    def decode(cls, since: str | None, order: Literal["mtime", "name"]) -> ListCursor:
        if not since:
            return cls(order=order)
        try:
            raw = json.loads(since)
        except ValueError:
            raw = None
        if not isinstance(raw, dict) or raw.get("o") != order:
            log.warning("ignoring a listing cursor of another kind; starting from the beginning")
            return cls(order=order)
        return cls(order=order, m=raw.get("m"), at=list(raw.get("at") or []), after=raw.get("after"))


def paginate(
    files: Iterable[RemoteFile], since: str | None, limit: int, order: Literal["mtime", "name"]
) -> ListPage:
    """Cut one bounded page out of a full listing, after the cursor."""
    limit = max(1, int(limit))
    cur = ListCursor.decode(since, order)
    if order == "name":
        ordered = sorted(files, key=lambda f: f.name)
        rest = [f for f in ordered if cur.after is None or f.name > cur.after]
        if not rest:  # the sweep reached the end: start the next one now so a tick is never idle
            rest = ordered
        page = rest[:limit]
        at_end = len(rest) <= limit
        nxt = ListCursor("name", after=None if at_end or not page else page[-1].name)
        return ListPage(page, nxt.encode())
    ordered = sorted(files, key=lambda f: (f.mtime or 0.0, f.name))
    seen_at = set(cur.at)
    m0 = cur.m
    page = []
    for f in ordered:  # already sorted; stop at the bound (a plain scan keeps the tie rule readable)
        fm = f.mtime or 0.0
        if m0 is not None and (fm < m0 or (fm == m0 and short_id(f.identity) in seen_at)):
            continue
        page.append(f)
        if len(page) >= limit:
            break
    if not page:
        return ListPage([], since if since else None)
    last_m = page[-1].mtime or 0.0
    at = [i for i in cur.at] if last_m == m0 else []
    at += [short_id(f.identity) for f in page if (f.mtime or 0.0) == last_m]
    return ListPage(page, ListCursor("mtime", m=last_m, at=at).encode())


# -- fetches: the guards and the two ways to take a block stream -------------------------------------
def too_large(rel: str, size: int, limit: int) -> FileTooLargeError:
    return FileTooLargeError(
        f"{rel} is {size} bytes, over the {limit}-byte limit; split the export or raise "
        "SNAPMAP_MAX_FILE_BYTES.",
        path=rel,
        size=size,
    )


def changed_since_listed(rel: str, listed: int | None = None, size: int | None = None) -> TransferError:
    """The file is not what was listed (size, or ETag when the sizes are not known): take it later."""
    sizes = f" ({listed} → {size} bytes)" if listed is not None and size is not None else ""
    return TransferError(
        f"{rel} changed since it was listed{sizes}; it will be taken when it is stable again.", path=rel
    )


def gone(rel: str, where: str) -> ConnectorError:
    """The file left the source between the listing and the fetch (moved, deleted)."""
    return ConnectorError(
        f"{rel} is no longer in {where} (moved or deleted since it was listed); it will be picked up "
        "again if it is dropped again.",
        code="remote_not_found",
        path=rel,
    )


def short_read(got: int, size: int) -> TransientError:
    """Fewer bytes than the server announced: a cut transfer, worth another try from the start."""
    return TransientError(f"short read ({got} of {size} bytes)", kind="transfer")


def check_size(rel: str, size: int, limit: int, listed: RemoteFile | None = None) -> None:
    """The guards before any byte is read: over the byte limit, or not the size it was listed with."""
    if size > limit:
        raise too_large(rel, size, limit)
    if listed is not None and size != listed.size:
        raise changed_since_listed(rel, listed.size, size)


def sized(blocks: Iterable[bytes], size: int, mismatch: Callable[[int], Exception]) -> Iterator[bytes]:
    """`blocks` passed on, then `mismatch(total)` raised unless they add up to exactly `size`."""
    got = 0
    for block in blocks:  # blocks of a file, not rows
        got += len(block)
        yield block
    if got != size:
        raise mismatch(got)


def _capped(blocks: Iterable[bytes], rel: str, limit: int) -> Iterator[bytes]:
    """`blocks` passed on while their total stays within `limit` (a file can grow while being read)."""
    total = 0
    for block in blocks:  # blocks of a file, not rows
        total += len(block)
        if total > limit:
            raise FileTooLargeError(f"{rel} grew over the size limit while being read.", path=rel)
        yield block


def join_blocks(blocks: Iterable[bytes], *, rel: str, limit: int) -> bytes:
    """The blocks as one bytes object; more than `limit` bytes raises FileTooLargeError."""
    out = io.BytesIO()  # getvalue() hands over its buffer: the file is held once, not twice
    for block in _capped(blocks, rel, limit):
        out.write(block)
    return out.getvalue()


def write_blocks(blocks: Iterable[bytes], dest: Path, *, rel: str, limit: int) -> tuple[str, int]:
    """Write `blocks` to `dest` (replacing it), hashing them on the way: (SHA-256 hex, bytes).

    The hash is `core.pipeline.content_hash` of the same bytes, so a streamed drop gets the partition and
    run key it would get fetched whole. More than `limit` bytes raises FileTooLargeError (a file that
    grew while being read); the caller removes `dest` on any failure.
    """
    digest = hashlib.sha256()
    written = 0
    with Path(dest).open("wb") as out:
        for block in _capped(blocks, rel, limit):
            written += len(block)
            digest.update(block)
            out.write(block)
    return digest.hexdigest(), written


def _named(name: str | RemoteFile) -> tuple[str, RemoteFile | None]:
    """(checked relative name, the listed RemoteFile or None) of what `fetch` was given."""
    listed = name if isinstance(name, RemoteFile) else None
    return safe_relpath(listed.name if listed is not None else str(name)), listed


# -- the interfaces ----------------------------------------------------------------------------------
@runtime_checkable
class DropSource(Protocol):
    """Where tenants drop files: list (bounded, cursor), take when stable, fetch whole, archive."""

    def list(self, since: str | None = None, limit: int = 500) -> ListPage: ...

    def fetch(self, name: str | RemoteFile) -> bytes: ...

    def fetch_to(self, name: str | RemoteFile, dest: Path) -> str: ...

    def move(self, name: str, to: Destination) -> str: ...

    def stat(self, name: str) -> RemoteFile | None: ...

    def ready(
        self, files: Sequence[RemoteFile], state: Mapping[str, Any] | None = None
    ) -> tuple[list[RemoteFile], dict[str, Any]]: ...


@runtime_checkable
class DeliveryTarget(Protocol):
    """Where feeds go out: atomic puts and a manifest written last."""

    def put(self, name: str, data: bytes) -> Any: ...

    def deliver(self, files: Mapping[str, bytes | Path], folder: str) -> dict[str, Any]: ...


class BaseDropSource:
    """Shared listing, stability, marker and fetch logic. Subclasses give `_walk`, `stat`, `_exists`,
    `_fetch`, …"""

    order: Literal["mtime", "name"] = "name"

    def __init__(
        self,
        *,
        include: Sequence[str] = DEFAULT_INCLUDE,
        require_done_marker: bool = False,
        max_file_bytes: int | None = None,
    ):
        self.include = tuple(include)
        self.require_done_marker = require_done_marker
        self.max_file_bytes = max_file_bytes or get_settings().max_file_bytes
        self._snapshot: dict[str, RemoteFile] | None = None

    def __enter__(self) -> BaseDropSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release connections (SFTP overrides it); a closed source reconnects on its next call."""

    # subclasses --------------------------------------------------------------------------------
    def _walk(self) -> list[RemoteFile]:
        """Every candidate file under the root (filters applied)."""
        raise NotImplementedError

    def stat(self, name: str) -> RemoteFile | None:
        raise NotImplementedError

    def _exists(self, name: str) -> bool:
        raise NotImplementedError

    def _fetch(self, rel: str, listed: RemoteFile | None, take: Callable[[Iterable[bytes]], T]) -> T:
        """Open `rel`, apply the guards (`check_size`, not-found, changed since `listed`) and return
        `take(blocks)`: a source's one transfer path, retried as a whole where the source retries."""
        raise NotImplementedError

    # shared ------------------------------------------------------------------------------------
    def list(self, since: str | None = None, limit: int = 500) -> ListPage:
        """One bounded page of drops after `since`; pass the returned cursor next time."""
        files = self._walk()
        self._snapshot = {f.name: f for f in files}
        page = paginate(files, since, limit, self.order)
        log.debug(
            "listed drops", extra={"fields": {"total": len(files), "page": len(page.files), "limit": limit}}
        )
        return page

    def fetch(self, name: str | RemoteFile) -> bytes:
        """The whole file, capped at `max_file_bytes`; with a listed RemoteFile it must still be as listed.
        A cut transfer never returns partial bytes."""
        rel, listed = _named(name)
        limit = self.max_file_bytes
        return self._fetch(rel, listed, lambda blocks: join_blocks(blocks, rel=rel, limit=limit))

    def fetch_to(self, name: str | RemoteFile, dest: Path) -> str:
        """`fetch`, written to `dest` block by block (flat memory); returns the content hash. A cut
        transfer is retried from the start (where the source retries); a failure never leaves `dest`."""
        rel, listed = _named(name)
        try:
            digest, _ = self._fetch(
                rel, listed, lambda blocks: write_blocks(blocks, dest, rel=rel, limit=self.max_file_bytes)
            )
        except BaseException:
            Path(dest).unlink(missing_ok=True)
            raise
        return digest

    def _look(self, name: str) -> RemoteFile | None:
        """A fresh look at one file: from this tick's full listing when there is one."""
        if self._snapshot is not None:
            return self._snapshot.get(name)
        return self.stat(name)

    def ready(
        self, files: Sequence[RemoteFile], state: Mapping[str, Any] | None = None
    ) -> tuple[list[RemoteFile], dict[str, Any]]:
        """Files safe to take now, and the new state to keep (JSON-serialisable).

        A file is ready when its size and mtime/ETag match the previous look (or its `.done` marker exists
        with `require_done_marker`), and it was not already handed out with the same identity.
        """
        state = dict(state or {})
        pending: dict[str, list[Any]] = dict(state.get("pending") or {})
        taken: list[str] = list(state.get("taken") or [])
        if self._snapshot is not None:  # forget ids of files gone from the source (moved/deleted)
            present = {short_id(f.identity) for f in self._snapshot.values()}
            taken = [t for t in taken if t in present]
        taken_set = set(taken)

        current: dict[str, RemoteFile] = {f.name: f for f in files}
        for name in list(pending):  # second look at files seen before but outside this page
            if name not in current:
                fresh = self._look(name)
                if fresh is None:
                    pending.pop(name)
                else:
                    current[name] = fresh

        out: list[RemoteFile] = []
        for name in sorted(current):
            f = current[name]
            sid = short_id(f.identity)
            if sid in taken_set:
                pending.pop(name, None)
                continue
            if self.require_done_marker:
                stable = self._exists(name + DONE_SUFFIX)
            else:
                stable = pending.get(name) == f.signature
            if stable:
                out.append(f)
                pending.pop(name, None)
                taken.append(sid)
                taken_set.add(sid)
            else:
                pending[name] = f.signature
        return out, {"pending": pending, "taken": taken[-MAX_TAKEN:]}


@dataclass(frozen=True)
class Tick:
    """What one sensor tick should take, and the state to store as the sensor cursor."""

    ready: list[RemoteFile]
    state: dict[str, Any]


def poll(source: DropSource, state: Mapping[str, Any] | None = None, *, limit: int = 500) -> Tick:
    """One sensor tick: list a bounded page after the saved cursor, then apply the stability rule.

    `state` is what the previous tick returned (store it with `json.dumps` as the sensor cursor).
    """
    state = dict(state or {})
    page = source.list(since=state.get("cursor"), limit=limit)
    ready, stability = source.ready(page.files, state.get("stability"))
    return Tick(ready, {"cursor": page.cursor or state.get("cursor"), "stability": stability})


def release(state: Mapping[str, Any], files: Iterable[RemoteFile]) -> dict[str, Any]:
    """Hand files back: a tick state in which `files` count as not yet taken (e.g. their fetch failed),
    so a later tick offers them again once stable. Accepts a `poll` state or a bare stability state."""
    out = dict(state)
    inner = "stability" in out
    stability = dict(out.get("stability") or {}) if inner else out
    files = list(files)
    drop = {short_id(f.identity) for f in files}
    stability["taken"] = [t for t in stability.get("taken") or [] if t not in drop]
    # already seen stable once: the next unchanged look makes it ready again
    stability["pending"] = {**(stability.get("pending") or {}), **{f.name: f.signature for f in files}}
    if inner:
        out["stability"] = stability
    return out


def archive_name(name: str, to: Destination, exists: Any) -> str:
    """`<to>/<name>`, or with a numbered suffix when an earlier drop of the same name is archived."""
    if to not in ARCHIVE_DIRS:
        raise RemotePathError(f"Files can only be moved to {ARCHIVE_DIRS}, not {to!r}.", to=to)
    dest = f"{to}/{name}"
    stem, dot, ext = dest.rpartition(".")
    if "/" in ext or not dot:
        stem, dot, ext = dest, "", ""
    n = 1
    while exists(dest):  # keep every archived drop; never overwrite the previous one of that name
        dest = f"{stem}.{n}{dot}{ext}"
        n += 1
    return dest
