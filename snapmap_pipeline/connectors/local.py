"""A local folder as a drop source: what `make run`, tests and single-machine setups use.

Symlinks pointing out of the root are never followed; names are checked before any file is opened.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from snapmap_pipeline.connectors.base import (
    DEFAULT_INCLUDE,
    FETCH_BLOCK,
    BaseDropSource,
    Destination,
    RemoteFile,
    archive_name,
    changed_since_listed,
    check_size,
    escape_error,
    gone,
    is_candidate,
    safe_relpath,
    sized,
    skip_dir,
)
from snapmap_pipeline.errors import SourceUnavailableError
from snapmap_pipeline.logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")


class LocalDropSource(BaseDropSource):
    """Drops in a local folder, one sub-folder per tenant.

    >>> src = LocalDropSource("examples/drops")  # doctest: +SKIP
    >>> page = src.list(limit=100)  # doctest: +SKIP
    """

    order = "name"

    def __init__(
        self,
        root: str | Path,
        *,
        include: Sequence[str] = DEFAULT_INCLUDE,
        require_done_marker: bool = False,
        max_file_bytes: int | None = None,
    ) -> None:
        super().__init__(
            include=include, require_done_marker=require_done_marker, max_file_bytes=max_file_bytes
        )
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalDropSource(root={str(self.root)!r})"

    def _real_root(self) -> Path:
        if not self.root.is_dir():
            raise SourceUnavailableError(
                f"Drop folder {self.root} does not exist or is not a folder; create it or fix the setting.",
                root=str(self.root),
            )
        return self.root.resolve()

    def _resolve(self, name: str) -> tuple[str, Path]:
        rel = safe_relpath(name)
        root = self._real_root()
        path = (root / rel).resolve()
        if not path.is_relative_to(root):
            raise escape_error(rel)
        return rel, path

    def _walk(self) -> list[RemoteFile]:
        root = self._real_root()
        out: list[RemoteFile] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            rel_dir = Path(dirpath).relative_to(root).as_posix()
            if rel_dir != ".":
                dirnames[:] = [d for d in dirnames if not skip_dir(f"{rel_dir}/{d}")]
            else:
                dirnames[:] = [d for d in dirnames if not skip_dir(d)]
            for fn in filenames:
                rel = fn if rel_dir == "." else f"{rel_dir}/{fn}"
                if not is_candidate(rel, self.include):
                    continue
                full = Path(dirpath) / fn
                if full.is_symlink() and not full.resolve().is_relative_to(root):
                    log.warning(
                        "skipping a symlink that points outside the drop root",
                        extra={"fields": {"path": rel}},
                    )
                    continue
                f = self._stat_path(rel, full)
                if f is not None:
                    out.append(f)
        return out

    @staticmethod
    def _stat_path(rel: str, full: Path) -> RemoteFile | None:
        try:
            st = full.stat()
        except FileNotFoundError:  # removed between walk and stat, or a dangling link
            return None
        if not full.is_file():
            return None
        return RemoteFile(name=rel, size=st.st_size, mtime=st.st_mtime)

    def stat(self, name: str) -> RemoteFile | None:
        """A fresh look at one file, or None when it is gone."""
        rel, path = self._resolve(name)
        return self._stat_path(rel, path)

    def _exists(self, name: str) -> bool:
        _, path = self._resolve(name)
        return path.exists()

    def _fetch(self, rel: str, listed: RemoteFile | None, take: Callable[[Iterable[bytes]], T]) -> T:
        """`take` the file's blocks after the guards; a listed file must still be all it was when listed."""
        _, path = self._resolve(rel)
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            raise gone(rel, "the drop folder") from None
        with fh:
            size = os.fstat(fh.fileno()).st_size
            check_size(rel, size, self.max_file_bytes, listed)
            blocks: Iterable[bytes] = iter(lambda: fh.read(FETCH_BLOCK), b"")
            if listed is not None:  # written to while being read
                blocks = sized(blocks, size, lambda got: changed_since_listed(rel, size, got))
            return take(blocks)

    def move(self, name: str, to: Destination) -> str:
        """Archive a drop (and its `.done` marker) under `<root>/<to>/`; returns the new name."""
        rel, path = self._resolve(name)
        root = self._real_root()
        dest = archive_name(rel, to, lambda d: (root / d).exists())
        target = root / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        marker = Path(str(path) + ".done")
        if marker.exists():
            os.replace(marker, Path(str(target) + ".done"))
        log.info("moved drop", extra={"fields": {"path": rel, "to": dest}})
        return dest
