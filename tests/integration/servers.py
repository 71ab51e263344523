"""Real servers on loopback for integration tests: OpenSSH sshd, moto_server (S3) and an in-process
asyncssh SFTP server that can cut transfers half-way. Each binds a free port on 127.0.0.1 and is stopped
by its own PID (never a broad kill). Reused by the connector, sensor and deployment tests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SSHD = Path("/usr/sbin/sshd")
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def moto_server_bin() -> Path | None:
    """moto_server next to the running interpreter (the venv), else on PATH."""
    here = Path(sys.executable).parent / "moto_server"
    if here.exists():
        return here
    found = shutil.which("moto_server")
    return Path(found) if found else None


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public_line: str  # "ssh-ed25519 AAAA…"
    fingerprint: str  # "SHA256:…"


def make_keypair(path: Path) -> KeyPair:
    """An ed25519 key in OpenSSH format (mode 0600, as sshd insists for host keys)."""
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = public.decode("ascii")
    blob = base64.b64decode(line.split()[1])
    fp = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    path.with_suffix(".pub").write_text(line + "\n")
    return KeyPair(path, line, fp)


def known_hosts_line(host: str, port: int, public_line: str) -> str:
    target = host if port == 22 else f"[{host}]:{port}"
    return f"{target} {' '.join(public_line.split()[:2])}\n"


def _wait_for_banner(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"no SSH banner on {host}:{port} after {timeout}s")


def _stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """TERM the process group we started (its own session), then KILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


# -- OpenSSH -----------------------------------------------------------------------------------------
@dataclass
class SshdServer:
    """A real OpenSSH sshd on loopback, serving the whole filesystem to the current user by key.

    `root` is an empty folder for the test's drops (the SFTP path is the same absolute path). Password
    login is enabled so wrong-password cases reach the server; the account has no usable password.
    """

    workdir: Path
    host: str = LOOPBACK
    port: int = 0
    username: str = field(default_factory=lambda: _current_user())
    root: Path = field(init=False)
    known_hosts: Path = field(init=False)
    pkey_path: Path = field(init=False)
    host_key: KeyPair = field(init=False)
    log_path: Path = field(init=False)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root = self.workdir / "root"
        self.root.mkdir(exist_ok=True)
        self.port = self.port or free_port()
        self.host_key = make_keypair(self.workdir / "ssh_host_ed25519_key")
        client = make_keypair(self.workdir / "id_ed25519")
        self.pkey_path = client.private_path
        (self.workdir / "authorized_keys").write_text(client.public_line + "\n")
        self.known_hosts = self.workdir / "known_hosts"
        self.known_hosts.write_text(known_hosts_line(self.host, self.port, self.host_key.public_line))
        self.log_path = self.workdir / "sshd.log"

    @property
    def host_key_fingerprint(self) -> str:
        return self.host_key.fingerprint

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _write_config(self) -> Path:
        cfg = self.workdir / "sshd_config"
        cfg.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.host}",
                    f"HostKey {self.host_key.private_path}",
                    "PidFile none",
                    "UsePAM no",
                    "StrictModes no",
                    "Subsystem sftp internal-sftp",
                    f"AuthorizedKeysFile {self.workdir / 'authorized_keys'}",
                    "PermitRootLogin yes",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    "UseDNS no",
                    "MaxStartups 100:30:200",
                    "MaxSessions 100",
                    "LogLevel INFO",
                ]
            )
            + "\n"
        )
        return cfg

    def start(self) -> SshdServer:
        """Start (or restart on the same port) and wait for the SSH banner (~0.1 s)."""
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        cfg = self._write_config()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        try:
            _wait_for_banner(self.host, self.port)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"sshd did not start: {self.log_path.read_text()[-2000:]}") from exc
        return self

    def stop(self) -> None:
        _stop_process(self.proc)
        self.proc = None

    def rotate_host_key(self) -> None:
        """Give the server a new host key (the known_hosts file keeps the old one); restart to apply."""
        self.host_key = make_keypair(self.workdir / f"ssh_host_ed25519_key_{secrets.token_hex(4)}")

    def source_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for SftpDropSource / SftpDelivery reaching this server by key."""
        kw: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "root": str(self.root),
            "known_hosts": self.known_hosts,
            "pkey_path": self.pkey_path,
            "timeout": 5,
            "retries": 2,
            "backoff": 0.05,
        }
        kw.update(overrides)
        return kw


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


# -- S3 (moto_server) --------------------------------------------------------------------------------
@dataclass
class S3Server:
    """moto_server as a subprocess. Credentials are moto's test keys; pass them to clients explicitly."""

    host: str = LOOPBACK
    port: int = 0
    access_key: str = "testing"
    secret_key: str = "testing"
    region: str = "us-east-1"
    workdir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # e.g. INITIAL_NO_AUTH_ACTION_COUNT: enforce auth
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _client: Any = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> S3Server:
        binary = moto_server_bin()
        if binary is None:
            raise FileNotFoundError("moto_server not found (pip install 'moto[server]')")
        self.port = self.port or free_port()
        out = (self.workdir / "moto.log").open("ab") if self.workdir else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [str(binary), "-H", self.host, "-p", str(self.port)],
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.endpoint_url + "/moto-api/", timeout=1):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.endpoint_url}")

    def stop(self) -> None:
        _stop_process(self.proc)
        self.proc = None

    def client(self, *, fresh: bool = False) -> Any:
        """A boto3 S3 client for this server (keys passed explicitly: tests set nothing global).

        Shared unless `fresh` (boto3 clients are thread-safe, and each costs ~0.3 s to build); take a
        fresh one when registering event hooks.
        """
        import boto3

        if self._client is not None and not fresh:
            return self._client
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )
        if not fresh:
            self._client = client
        return client

    def new_bucket(self, client: Any | None = None) -> str:
        """A fresh, empty bucket so tests sharing the server never see each other's keys."""
        name = f"t-{secrets.token_hex(6)}"
        (client or self.client()).create_bucket(Bucket=name)
        return name


# -- asyncssh, in-process, with faults ---------------------------------------------------------------
@dataclass
class Faults:
    """What the asyncssh server breaks. A cut serves bytes up to the offset, then drops the connection.

    `cuts` is how many transfers to cut before behaving again (so "the next attempt succeeds").
    """

    cut_read_at: int | None = None
    cut_write_at: int | None = None
    cuts: int = 1
    cut_count: int = 0


@dataclass
class AsyncSshServer:
    """An asyncssh SFTP server in a background thread, chrooted to `root`, password login."""

    root: Path
    host: str = LOOPBACK
    port: int = 0
    username: str = "snapmap"
    password: str = field(default_factory=lambda: "pw-" + secrets.token_hex(8))
    faults: Faults = field(default_factory=Faults)
    known_hosts: Path | None = None
    host_key_fingerprint: str = ""
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _server: Any = field(default=None, repr=False)

    def start(self) -> AsyncSshServer:
        import asyncssh

        self.root.mkdir(parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519")
        public_line = key.export_public_key("openssh").decode("ascii").strip()
        blob = base64.b64decode(public_line.split()[1])
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode()
        self.host_key_fingerprint = "SHA256:" + digest.rstrip("=")
        server = self

        class _Server(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return username == server.username and secrets.compare_digest(password, server.password)

        class _FaultySFTP(asyncssh.SFTPServer):
            def __init__(self, chan: Any) -> None:
                super().__init__(chan, chroot=str(server.root).encode())

            def _cut(self, limit: int | None, offset: int, length: int) -> int | None:
                f = server.faults
                if limit is None or f.cut_count >= f.cuts or offset + length <= limit:
                    return None
                f.cut_count += 1
                return max(0, limit - offset)

            def read(self, file_obj: Any, offset: int, size: int) -> Any:
                keep = self._cut(server.faults.cut_read_at, offset, size)
                if keep is None:
                    return super().read(file_obj, offset, size)
                data = super().read(file_obj, offset, keep) if keep else b""
                self.connection.abort()  # the link dies half-way through the download
                return data

            def write(self, file_obj: Any, offset: int, data: bytes) -> Any:
                keep = self._cut(server.faults.cut_write_at, offset, len(data))
                if keep is None:
                    return super().write(file_obj, offset, data)
                if keep:
                    super().write(file_obj, offset, data[:keep])
                file_obj.flush()
                self.connection.abort()  # the link dies half-way through the upload
                return None

        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="asyncssh-server", daemon=True)
        self._thread.start()

        async def listen() -> Any:
            return await asyncssh.listen(
                self.host,
                self.port,
                server_host_keys=[key],
                server_factory=_Server,
                sftp_factory=_FaultySFTP,
                allow_scp=False,
            )

        self._server = asyncio.run_coroutine_threadsafe(listen(), loop).result(timeout=10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.known_hosts = self.root.parent / f"known_hosts_asyncssh_{self.port}"
        self.known_hosts.write_text(known_hosts_line(self.host, self.port, public_line))
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._loop.close()
            self._loop = None

    def source_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for SftpDropSource / SftpDelivery reaching this server by password."""
        kw: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "root": "/",
            "known_hosts": self.known_hosts,
            "password": self.password,
            "timeout": 5,
            "retries": 1,
            "backoff": 0.05,
        }
        kw.update(overrides)
        return kw
