"""A throwaway PostgreSQL cluster on loopback for the deployment tests and the many-files bench:
`initdb` in a temp dir, `pg_ctl start` on a free port (socket in the same dir), stopped by `pg_ctl stop
-m fast` and, if that fails, by its postmaster PID. As root it runs as the `postgres` system user.
Also a Dagster deployment harness on it: deploy/dagster.yaml, a workspace, `dagster-daemon run`."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from snapmap_pipeline.logs import get_logger
from tests.integration.servers import LOOPBACK, free_port

log = get_logger(__name__)

RUN_AS = "postgres"  # the Debian package's system user; postgres refuses to run as root


def postgres_bin_dir() -> Path | None:
    """The newest `/usr/lib/postgresql/<major>/bin` holding initdb and pg_ctl, else their dir on PATH."""
    found = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if (Path(p) / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb and shutil.which("pg_ctl") else None


@dataclass
class PostgresServer:
    """One cluster in `workdir`. `url()` and `env()` (the `DAGSTER_PG_*` values) point at a database."""

    workdir: Path
    db_name: str = "dagster"
    user: str = "snapmap"
    password: str = "snapmap-test"
    host: str = LOOPBACK
    port: int = 0
    bin_dir: Path | None = None
    data_dir: Path = field(init=False)
    socket_dir: Path = field(init=False)
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.bin_dir = self.bin_dir or postgres_bin_dir()
        if self.bin_dir is None:
            raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
        self.data_dir = self.workdir / "data"
        self.socket_dir = self.workdir / "sock"
        self.log_path = self.workdir / "postgres.log"

    # -- running as the right user -------------------------------------------------------------
    def _as_owner(self, argv: list[str]) -> list[str]:
        """As root, the same command through `runuser -u postgres`; otherwise unchanged."""
        if os.geteuid() != 0:
            return argv
        runuser = shutil.which("runuser")
        if runuser is None:
            raise FileNotFoundError("runuser (util-linux) is needed to start PostgreSQL as root")
        return [runuser, "-u", RUN_AS, "--", *argv]

    def _run(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._as_owner(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "LC_ALL": "C.UTF-8", "PGTZ": "UTC"},
        )

    def _chown_tree(self) -> None:
        if os.geteuid() != 0:
            return
        entry = pwd.getpwnam(RUN_AS)
        for p in [self.workdir, *self.workdir.rglob("*")]:
            os.chown(p, entry.pw_uid, entry.pw_gid)
        # the postgres user must be able to reach the temp dir; its parents are usually 0755/1777
        os.chmod(self.workdir, 0o700)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> PostgresServer:
        """initdb (trust auth for the superuser on the socket, md5 on TCP), start, create user and db."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._chown_tree()
        init = self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            timeout=120,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr[-2000:]}")
        self.port = self.port or free_port()
        opts = (
            f"-c listen_addresses={self.host} -c port={self.port} "
            f"-c unix_socket_directories={self.socket_dir} -c fsync=off -c synchronous_commit=off "
            f"-c full_page_writes=off -c max_connections=200"
        )
        started = self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-o",
                opts,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            timeout=timeout + 10,
        )
        if started.returncode != 0:
            tail = self.log_path.read_text()[-2000:] if self.log_path.exists() else ""
            self.stop()
            raise RuntimeError(f"pg_ctl start failed: {started.stderr[-1000:]} {tail}")
        created = self._run(
            [
                str(self.bin_dir / "createdb"),
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                self.user,
                self.db_name,
            ]
        )
        if created.returncode != 0:
            self.stop()
            raise RuntimeError(f"createdb failed: {created.stderr[-1000:]}")
        log.info("postgres started", extra={"fields": {"port": self.port, "pid": self.pid}})
        return self

    @property
    def pid(self) -> int | None:
        """The postmaster's PID from its pid file (first line), or None when not running."""
        pidfile = self.data_dir / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """`pg_ctl stop -m fast`; if that fails, TERM then KILL the postmaster by its PID."""
        pid = self.pid
        if pid is None:
            return
        stopped = self._run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]
        )
        if stopped.returncode == 0:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.1)

    def create_database(self, name: str) -> str:
        """A further empty database on this server (e.g. one per test); returns its name."""
        done = self._run(
            [
                str(self.bin_dir / "createdb"),
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                self.user,
                name,
            ]
        )
        if done.returncode != 0:
            raise RuntimeError(f"createdb {name} failed: {done.stderr[-1000:]}")
        return name

    # -- how clients reach it ------------------------------------------------------------------
    def url(self, db_name: str | None = None) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{db_name or self.db_name}"

    def env(self, db_name: str | None = None) -> dict[str, str]:
        """The `DAGSTER_PG_*` variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": db_name or self.db_name,
        }


# -- a Dagster deployment on this machine: instance on Postgres, the daemon as a subprocess ---------
DEPLOY_YAML = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def deploy_instance_config(
    *, max_concurrent_runs: int, tenant_limit: int | None = None, pool_limit: int | None = None
) -> dict[str, Any]:
    """deploy/dagster.yaml with this machine's numbers: the same storage, queue, monitoring and retries."""
    config = yaml.safe_load(DEPLOY_YAML.read_text())
    runs = config.setdefault("concurrency", {}).setdefault("runs", {})
    runs["max_concurrent_runs"] = max_concurrent_runs
    if tenant_limit is not None:
        for limit in runs.get("tag_concurrency_limits") or []:
            if limit["key"] == "snapmap/tenant":
                limit["limit"] = tenant_limit
    if pool_limit is not None:
        config["concurrency"].setdefault("pools", {})["default_limit"] = pool_limit
    config.setdefault("run_monitoring", {})["poll_interval_seconds"] = 5
    return config


# The executor is a deployment knob (one process per step by default). The spawn start method re-imports
# the pipeline in every step process; forkserver forks steps from a process that imported it once.
EXECUTORS = {
    "spawn": "dg.multiprocess_executor",
    "forkserver": (
        "dg.multiprocess_executor.configured("
        "{'start_method': {'forkserver': {'preload_modules': ['snapmap_pipeline.defs']}}})"
    ),
    "in_process": "dg.in_process_executor",
}
CODE_LOCATION = """\
# The project's definitions with the executor chosen for this deployment (written by the test harness).
import dagster as dg

from snapmap_pipeline.defs import build_defs

defs = build_defs(executor={executor})
"""


@dataclass
class DaemonDeployment:
    """DAGSTER_HOME with a dagster.yaml, a workspace on the repo's definitions, and `dagster-daemon run`
    in its own process group (stopped by PID). `env` is what the daemon, its code server and runs see."""

    home: Path
    env: dict[str, str]
    instance_config: dict[str, Any]
    executor: str | None = None  # None: the definitions as they are; else a key of EXECUTORS
    workspace: Path = field(init=False)
    log_path: Path = field(init=False)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "dagster.yaml").write_text(yaml.safe_dump(self.instance_config, sort_keys=False))
        code = PROJECT_ROOT / "definitions.py"
        if self.executor is not None:
            code = self.home / "code_location.py"
            code.write_text(CODE_LOCATION.format(executor=EXECUTORS[self.executor]))
        self.workspace = self.home / "workspace.yaml"
        self.workspace.write_text(
            yaml.safe_dump(
                {
                    "load_from": [
                        {
                            "python_file": {
                                "relative_path": str(code),
                                "working_directory": str(PROJECT_ROOT),
                                "location_name": "snapmap",
                            }
                        }
                    ]
                }
            )
        )
        self.log_path = self.home / "daemon.log"
        self.env = {**os.environ, **self.env, "DAGSTER_HOME": str(self.home)}

    def _bin(self, name: str) -> str:
        return str(Path(sys.executable).parent / name)

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`dagster …` against this instance and workspace (e.g. `sensor start NAME`)."""
        return subprocess.run(
            [self._bin("dagster"), *args, "-w", str(self.workspace)],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def start_sensor(self, name: str) -> None:
        done = self.cli("sensor", "start", name)
        if done.returncode != 0:
            raise RuntimeError(f"dagster sensor start {name} failed: {done.stderr[-2000:]}")

    def set_pool_limit(self, pool: str, limit: int) -> None:
        done = subprocess.run(
            [self._bin("dagster"), "instance", "concurrency", "set", pool, str(limit)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"setting pool {pool} failed: {done.stderr[-2000:]}")

    def start_daemon(self) -> DaemonDeployment:
        log_file = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [self._bin("dagster-daemon"), "run", "-w", str(self.workspace)],
            env=self.env,
            cwd=self.home,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the daemon, its code server and the runs
        )
        log_file.close()
        return self

    def daemon_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """TERM the daemon's process group; KILL what is left of the group after a grace period.

        The code server the daemon starts sits in the same group but can outlive a TERM (it waits for
        its heartbeat to lapse), so the group is checked after the daemon has exited, not only the daemon.
        """
        proc, self.proc = self.proc, None
        if proc is None:
            return
        group = proc.pid  # start_new_session: the group id is the daemon's PID
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _group_alive(group):
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
