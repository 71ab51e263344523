"""SFTP drop source (paramiko). Host keys are always verified (RejectPolicy, never AutoAdd); secrets never
reach a message or a log; one connection is reused for the object's life and rebuilt on transient errors.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import stat as stat_mod
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import paramiko

from snapmap_pipeline.connectors.base import (
    DEFAULT_INCLUDE,
    FETCH_BLOCK,
    BaseDropSource,
    Destination,
    RemoteFile,
    archive_name,
    check_size,
    escape_error,
    gone,
    is_candidate,
    safe_relpath,
    short_read,
    sized,
    skip_dir,
    within,
)
from snapmap_pipeline.connectors.retry import TransientError, with_retries
from snapmap_pipeline.errors import (
    AuthenticationError,
    ConfigError,
    ConnectorError,
    HostKeyError,
    SourceUnavailableError,
    TransferError,
)
from snapmap_pipeline.logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")


def key_fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style `SHA256:…` fingerprint, what `ssh-keygen -lf` prints."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


class _RejectUnknown(paramiko.RejectPolicy):
    """RejectPolicy, but raising a HostKeyError that says how to fix it. Accepts a key only when it
    matches the configured fingerprint."""

    def __init__(self, endpoint: str, fingerprint: str | None) -> None:
        self.endpoint = endpoint
        self.fingerprint = fingerprint.strip() if fingerprint else None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        got = key_fingerprint(key)
        if self.fingerprint is not None:
            if got.rstrip("=") == self.fingerprint.rstrip("="):
                return
            raise HostKeyError(
                f"SFTP host key for {self.endpoint} does not match the configured fingerprint: expected "
                f"{self.fingerprint}, server offered {key.get_name()} {got}. The connection was refused; if "
                "the server's key was rotated on purpose, confirm the new fingerprint with its owner and "
                "update the setting.",
                endpoint=self.endpoint,
                expected=self.fingerprint,
                offered=got,
            )
        raise HostKeyError(
            f"SFTP host key for {self.endpoint} is unknown ({key.get_name()} {got}); the connection was "
            "refused. Confirm the fingerprint with the server's owner, then add the key to the known_hosts "
            "file (e.g. `ssh-keyscan -p PORT HOST >> known_hosts`) or set the fingerprint.",
            endpoint=self.endpoint,
            offered=got,
        )


def _status_error(exc: OSError, what: str, endpoint: str) -> ConnectorError:
    """An SFTP status reply (the server answered, and said no) as a connector error with advice."""
    if isinstance(exc, FileNotFoundError):
        return ConnectorError(
            f"SFTP {what} on {endpoint}: no such file or folder (moved or deleted since it was listed?).",
            code="remote_not_found",
            op=what,
        )
    if isinstance(exc, PermissionError):
        return ConnectorError(
            f"SFTP {what} on {endpoint}: permission denied; give the SFTP user rights on the drop folder "
            "(read, and write for processed/ and failed/).",
            code="remote_permission_denied",
            op=what,
        )
    return ConnectorError(
        f"SFTP {what} on {endpoint} failed: {exc.strerror or exc}", code="sftp_error", op=what
    )


class SftpSession:
    """One verified, reusable SFTP connection with retries. Use as a context manager, or call close()."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        root: str,
        *,
        known_hosts: str | Path | None = None,
        host_key_fingerprint: str | None = None,
        password: str | None = None,
        pkey_path: str | Path | None = None,
        timeout: float = 10,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        if known_hosts is None and not host_key_fingerprint:
            raise ConfigError(
                "SFTP needs a known_hosts file or a host key fingerprint; host-key checking cannot be "
                "turned off. Get the fingerprint from the server's owner (`ssh-keygen -lf` on its key).",
                host=host,
            )
        if known_hosts is not None and not Path(known_hosts).is_file():
            raise ConfigError(f"known_hosts file {known_hosts} does not exist.", path=str(known_hosts))
        self.host = host
        self.port = int(port)
        self.username = username
        self.root = root
        self.known_hosts = Path(known_hosts) if known_hosts is not None else None
        self.host_key_fingerprint = host_key_fingerprint
        self._password = password  # never logged, never in repr or error details
        self.pkey_path = str(pkey_path) if pkey_path is not None else None
        self.timeout = timeout
        self.retries = max(1, int(retries))
        self.backoff = backoff
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._real_root: str | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"root={self.root!r})"
        )

    def __enter__(self) -> SftpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; the next call opens a new one."""
        for thing in (self._sftp, self._client):
            if thing is not None:
                try:
                    thing.close()
                except (OSError, EOFError, paramiko.SSHException):
                    log.debug("error while closing an SFTP connection (ignored)")
        self._sftp = None
        self._client = None

    # connection --------------------------------------------------------------------------------
    def _connect(self) -> paramiko.SFTPClient:
        client = paramiko.SSHClient()
        if self.known_hosts is not None:
            client.load_host_keys(str(self.known_hosts))  # our trust file only, never ~/.ssh
        client.set_missing_host_key_policy(_RejectUnknown(self.endpoint, self.host_key_fingerprint))
        ok = False
        try:
            client.connect(
                self.host,
                port=self.port,
                username=self.username,
                password=self._password,
                key_filename=self.pkey_path,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                channel_timeout=self.timeout,
                look_for_keys=False,
                allow_agent=False,
            )
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(self.timeout)
            ok = True
        except HostKeyError:
            raise
        except paramiko.BadHostKeyException as exc:
            expected = key_fingerprint(exc.expected_key)
            raise HostKeyError(
                f"SFTP host key for {self.endpoint} has CHANGED: known_hosts has {expected}, the server "
                f"offered {exc.key.get_name()} {key_fingerprint(exc.key)}. The connection was refused, as "
                "this can be a man-in-the-middle. If the key was rotated on purpose, confirm the new "
                "fingerprint with the server's owner and replace the line in known_hosts.",
                endpoint=self.endpoint,
                offered=key_fingerprint(exc.key),
            ) from None
        except paramiko.AuthenticationException:
            method = "key" if self.pkey_path else "password" if self._password else "no credentials"
            raise AuthenticationError(
                f"SFTP server {self.endpoint} refused the login for user {self.username!r} ({method}). Check "
                "the username and the password or private key configured for this source (the secret is "
                "not shown).",
                endpoint=self.endpoint,
                username=self.username,
                method=method,
            ) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransientError(f"cannot reach SFTP server {self.endpoint}: {type(exc).__name__}") from None
        finally:
            if not ok:
                client.close()
        self._client = client
        self._sftp = sftp
        return sftp

    def _session(self) -> paramiko.SFTPClient:
        transport = self._client.get_transport() if self._client is not None else None
        if self._sftp is None or transport is None or not transport.is_active():
            self.close()
            self._connect()
        assert self._sftp is not None
        if self._real_root is None:
            try:
                self._real_root = self._sftp.normalize(self.root)
            except FileNotFoundError:
                raise ConfigError(
                    f"SFTP root {self.root!r} does not exist on {self.endpoint}; create it or fix the "
                    "setting.",
                    endpoint=self.endpoint,
                    root=self.root,
                ) from None
        return self._sftp

    def _run(self, what: str, fn: Callable[[paramiko.SFTPClient], T]) -> T:
        """Run `fn(sftp)` with connect, reuse, retries; map failures onto connector errors."""

        def attempt() -> T:
            sftp = self._session()
            try:
                return fn(sftp)
            except (paramiko.SSHException, EOFError) as exc:
                raise TransientError(f"{type(exc).__name__} during {what}", kind="transfer") from None
            except OSError as exc:
                if isinstance(exc, TimeoutError | ConnectionError) or not self._alive():
                    # the link died or stalled under the operation: worth another try
                    raise TransientError(f"{type(exc).__name__} during {what}", kind="transfer") from None
                raise _status_error(exc, what, self.endpoint) from None

        try:
            return with_retries(
                attempt, attempts=self.retries, backoff=self.backoff, what=what, on_retry=self.close
            )
        except TransientError as exc:
            self.close()
            if exc.kind == "transfer":
                raise TransferError(
                    f"SFTP {what} on {self.endpoint} was cut off after {self.retries} attempt(s); nothing "
                    "partial was kept. It will be tried again on the next tick.",
                    endpoint=self.endpoint,
                    op=what,
                ) from None
            raise SourceUnavailableError(
                f"SFTP server {self.endpoint} is unreachable after {self.retries} attempt(s) ({exc}). Files "
                "stay on the source; check the server, the host/port setting and the network.",
                endpoint=self.endpoint,
                op=what,
            ) from None

    def _alive(self) -> bool:
        transport = self._client.get_transport() if self._client is not None else None
        return bool(
            transport is not None
            and transport.is_active()
            and self._sftp is not None
            and not self._sftp.get_channel().closed
        )

    # paths -------------------------------------------------------------------------------------
    def _root(self) -> str:
        assert self._real_root is not None
        return self._real_root

    def _full(self, rel: str) -> str:
        return posixpath.join(self._root(), rel)

    def _checked(self, sftp: paramiko.SFTPClient, name: str) -> tuple[str, str]:
        """(relative name, server-resolved path), refusing names or links that leave the root."""
        rel = safe_relpath(name)
        try:
            real = sftp.normalize(self._full(rel))
        except FileNotFoundError:
            raise gone(rel, "the SFTP source") from None
        if not within(real, self._root()):
            raise escape_error(rel)
        return rel, real

    def _makedirs(self, sftp: paramiko.SFTPClient, rel_dir: str) -> None:
        path = self._root()
        for part in [p for p in rel_dir.split("/") if p]:
            path = posixpath.join(path, part)
            try:
                sftp.stat(path)
            except FileNotFoundError:
                try:
                    sftp.mkdir(path)
                except OSError:  # created meanwhile by another writer
                    sftp.stat(path)

    def _exists_path(self, sftp: paramiko.SFTPClient, path: str) -> bool:
        try:
            sftp.stat(path)
        except FileNotFoundError:
            return False
        return True

    def _rename(self, sftp: paramiko.SFTPClient, src: str, dst: str) -> None:
        """Atomic replace (posix-rename@openssh.com), falling back to remove + rename."""
        try:
            sftp.posix_rename(src, dst)
        except (FileNotFoundError, PermissionError):
            raise
        except OSError:  # the server lacks the extension: not atomic, but never leaves both names
            if self._exists_path(sftp, dst):
                sftp.remove(dst)
            sftp.rename(src, dst)


class SftpDropSource(SftpSession, BaseDropSource):
    """Drops on an SFTP server under `root` (one folder per tenant), listed recursively.

    >>> with SftpDropSource("sftp.example.com", 22, "snapmap", "/drops",
    ...                     known_hosts="known_hosts", pkey_path="id_ed25519") as src:  # doctest: +SKIP
    ...     page = src.list(limit=500)
    """

    order = "name"

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        root: str,
        *,
        known_hosts: str | Path | None = None,
        host_key_fingerprint: str | None = None,
        password: str | None = None,
        pkey_path: str | Path | None = None,
        timeout: float = 10,
        retries: int = 3,
        backoff: float = 0.5,
        include: Sequence[str] = DEFAULT_INCLUDE,
        require_done_marker: bool = False,
        max_file_bytes: int | None = None,
    ) -> None:
        SftpSession.__init__(
            self,
            host,
            port,
            username,
            root,
            known_hosts=known_hosts,
            host_key_fingerprint=host_key_fingerprint,
            password=password,
            pkey_path=pkey_path,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
        )
        BaseDropSource.__init__(
            self, include=include, require_done_marker=require_done_marker, max_file_bytes=max_file_bytes
        )

    def __enter__(self) -> SftpDropSource:
        return self

    def _walk(self) -> list[RemoteFile]:
        return self._run("list", self._walk_with)

    def _walk_with(self, sftp: paramiko.SFTPClient) -> list[RemoteFile]:
        root = self._root()
        out: list[RemoteFile] = []
        stack = [""]
        while stack:  # iterative walk: drop trees can be deep, and recursion limits are not a guard
            rel_dir = stack.pop()
            try:
                entries = sftp.listdir_attr(posixpath.join(root, rel_dir) if rel_dir else root)
            except FileNotFoundError:
                if not rel_dir:
                    raise
                continue  # a sub-folder removed while walking
            for entry in entries:
                rel = f"{rel_dir}/{entry.filename}" if rel_dir else entry.filename
                mode = entry.st_mode or 0
                if stat_mod.S_ISDIR(mode):
                    if not skip_dir(rel):
                        stack.append(rel)
                    continue
                if not is_candidate(rel, self.include):
                    continue
                attrs: Any = entry
                if stat_mod.S_ISLNK(mode):
                    try:
                        real = sftp.normalize(posixpath.join(root, rel))
                        attrs = sftp.stat(real)
                    except FileNotFoundError:
                        continue  # dangling link
                    if not within(real, root):
                        log.warning(
                            "skipping a symlink that points outside the drop root",
                            extra={"fields": {"path": rel}},
                        )
                        continue
                if not stat_mod.S_ISREG(attrs.st_mode or 0):
                    continue
                out.append(
                    RemoteFile(name=rel, size=int(attrs.st_size or 0), mtime=float(attrs.st_mtime or 0))
                )
        return out

    def stat(self, name: str) -> RemoteFile | None:
        def go(sftp: paramiko.SFTPClient) -> RemoteFile | None:
            try:
                rel, real = self._checked(sftp, name)
                attrs = sftp.stat(real)
            except ConnectorError as exc:
                if exc.code == "remote_not_found":
                    return None
                raise
            except FileNotFoundError:
                return None
            return RemoteFile(name=rel, size=int(attrs.st_size or 0), mtime=float(attrs.st_mtime or 0))

        return self._run("stat", go)

    def _exists(self, name: str) -> bool:
        return self.stat(name) is not None

    def _fetch(self, rel: str, listed: RemoteFile | None, take: Callable[[Iterable[bytes]], T]) -> T:
        """`take` the file's blocks (windowed reads) after the guards. A cut or short read is retried
        from the start on a fresh connection."""

        def go(sftp: paramiko.SFTPClient) -> T:
            _, real = self._checked(sftp, rel)
            with sftp.open(real, "rb") as fh:
                size = int(fh.stat().st_size or 0)
                check_size(rel, size, self.max_file_bytes, listed)
                return take(sized(_windows(fh, size), size, lambda got: short_read(got, size)))

        return self._run("fetch", go)

    def move(self, name: str, to: Destination) -> str:
        """Archive a drop (and its `.done` marker) under `<root>/<to>/`; returns the new name."""

        def go(sftp: paramiko.SFTPClient) -> str:
            rel, real = self._checked(sftp, name)
            dest = archive_name(rel, to, lambda d: self._exists_path(sftp, self._full(d)))
            self._makedirs(sftp, posixpath.dirname(dest))
            self._rename(sftp, real, self._full(dest))
            marker = self._full(rel) + ".done"
            if self._exists_path(sftp, marker):
                self._rename(sftp, marker, self._full(dest) + ".done")
            return dest

        dest = self._run("move", go)
        log.info("moved drop", extra={"fields": {"path": name, "to": dest}})
        return dest


READ_REQUEST = 32 * 1024  # one SFTP read request (the size paramiko's own prefetch asks for)


def _windows(fh: paramiko.SFTPFile, size: int) -> Iterator[bytes]:
    """The file's bytes in order, FETCH_BLOCK at a time, each block's read requests pipelined.

    `prefetch()` would queue the whole file and keep whatever arrived before it was read: memory as
    large as the file when the disk is slower than the link. A window bounds that to one block.
    """
    for start in range(0, size, FETCH_BLOCK):  # a loop over blocks of the file, not over rows
        end = min(size, start + FETCH_BLOCK)
        chunks = [(off, min(READ_REQUEST, end - off)) for off in range(start, end, READ_REQUEST)]
        yield b"".join(fh.readv(chunks))
