"""Fixtures that start real servers on loopback (sshd, moto_server, asyncssh, PostgreSQL) and stop them by
PID.

Under CI=true a missing server binary fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.postgres import PostgresServer, postgres_bin_dir
from tests.integration.servers import SSHD, AsyncSshServer, S3Server, SshdServer, moto_server_bin

IN_CI = os.environ.get("CI") == "true"


def _missing(what: str) -> None:
    msg = f"{what} is not installed"
    if IN_CI:
        pytest.fail(f"CI=true: {msg}; .ci/run must install it")
    pytest.skip(msg)


def _need_sshd() -> None:
    if not SSHD.exists():
        _missing(f"OpenSSH server ({SSHD}; apt-get install openssh-server)")


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    """One shared sshd for the session. Tests write under their own sub-folder of `root`."""
    _need_sshd()
    server = SshdServer(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture()
def sshd_factory(tmp_path: Path) -> Iterator[Callable[[], SshdServer]]:
    """Start private sshd servers a test may stop, restart or re-key; all are stopped afterwards."""
    _need_sshd()
    started: list[SshdServer] = []

    def make() -> SshdServer:
        server = SshdServer(tmp_path / f"sshd{len(started)}").start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One moto_server for the session; use `s3_server.new_bucket()` per test."""
    if moto_server_bin() is None:
        _missing("moto_server (pip install 'moto[server]')")
    server = S3Server(workdir=tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture()
def asyncssh_server(tmp_path: Path) -> Iterator[AsyncSshServer]:
    """A fresh in-process SFTP server per test; set `server.faults` to cut transfers."""
    try:
        import asyncssh  # noqa: F401
    except ImportError:
        _missing("asyncssh (pip)")
    server = AsyncSshServer(root=tmp_path / "asyncssh-root").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session on a free loopback port; use `create_database` per test.

    The cluster lives under /tmp (not pytest's 0700 temp root) so the `postgres` user can reach it when
    the tests run as root.
    """
    if postgres_bin_dir() is None:
        _missing("PostgreSQL (initdb/pg_ctl under /usr/lib/postgresql/*/bin; apt-get install postgresql)")
    workdir = Path(tempfile.mkdtemp(prefix="snapmap-pg-"))
    server = PostgresServer(workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
