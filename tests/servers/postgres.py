"""Pytest plugin: a throw-away PostgreSQL cluster for the suite.

The cluster is made with ``initdb`` (scram-sha-256 password authentication, a password file for
the superuser), started with ``pg_ctl`` on a free 127.0.0.1 port with a private socket directory,
and stopped by process id at the end of the session. PostgreSQL refuses to run as root, so when the
suite runs as root the binaries run as the ``postgres`` OS user (``runuser -u postgres --``) on a
temporary directory that user owns. ``start_postgres``/``stop_postgres`` are plain functions so
that benchmarks can use them too.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import require
from tests.servers.process import free_port

__all__ = ["PostgresServer", "find_pg_bindir", "postgres", "start_postgres", "stop_postgres"]

_CANDIDATE_BINDIRS = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/14/bin",
)


def find_pg_bindir() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or None when absent."""
    env = os.environ.get("PG_BINDIR")
    candidates = [env] if env else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
            )
            if out.returncode == 0:
                candidates.append(out.stdout.strip())
    candidates.extend(_CANDIDATE_BINDIRS)
    for candidate in candidates:
        bindir = Path(candidate)
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


@dataclass
class PostgresServer:
    """A running throw-away cluster (superuser ``postgres``, scram-sha-256 over TCP)."""

    host: str
    port: int
    superuser: str
    password: str = field(repr=False)
    pid: int
    datadir: Path
    bindir: Path
    run_as: str | None

    def dsn(
        self, user: str | None = None, password: str | None = None, dbname: str = "postgres"
    ) -> str:
        """A libpq connection string (key=value form) for ``user`` (default the superuser)."""
        user = user or self.superuser
        password = self.password if password is None and user == self.superuser else password
        parts = [f"host={self.host}", f"port={self.port}", f"dbname={dbname}", f"user={user}"]
        if password is not None:
            parts.append(f"password='{_quote(password)}'")
        parts.append("connect_timeout=5")
        return " ".join(parts)

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """A ``postgresql://`` URL for ``user`` (default the superuser)."""
        from urllib.parse import quote

        user = user or self.superuser
        password = self.password if password is None and user == self.superuser else password
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/postgres"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _runner(run_as: str | None) -> list[str]:
    return ["runuser", "-u", run_as, "--"] if run_as else []


def start_postgres(
    base_dir: Path | None = None, *, timeout_seconds: float = 60.0
) -> PostgresServer:
    """Create and start a throw-away cluster; return where it listens.

    Raises:
        RuntimeError: the binaries are absent or the server did not start.
    """
    bindir = find_pg_bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql "
            "(Debian: apt-get install postgresql) or set PG_BINDIR"
        )
    run_as: str | None = None
    if os.geteuid() == 0:
        run_as = "postgres"
        if shutil.which("runuser") is None:
            raise RuntimeError("running as root needs runuser to start PostgreSQL as 'postgres'")
    root = Path(tempfile.mkdtemp(prefix="yosai-pg-", dir=base_dir))
    root.chmod(0o700)
    datadir = root / "data"
    sockdir = root / "sock"
    sockdir.mkdir()
    password = secrets.token_urlsafe(24)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n", encoding="utf-8")
    pwfile.chmod(0o600)
    if run_as:
        shutil.chown(root, user=run_as)
        shutil.chown(sockdir, user=run_as)
        shutil.chown(pwfile, user=run_as)
    port = free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    subprocess.run(
        [
            *_runner(run_as),
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=timeout_seconds,
    )
    pwfile.unlink()
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sockdir} "
        "-c fsync=off -c max_connections=200"
    )
    log = root / "server.log"
    if run_as:
        log.touch()
        shutil.chown(log, user=run_as)
    subprocess.run(
        [
            *_runner(run_as),
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-o",
            options,
            "-l",
            str(log),
            "-w",
            "-t",
            str(int(timeout_seconds)),
            "start",
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=timeout_seconds + 10,
    )
    pid_line = (datadir / "postmaster.pid").read_text(encoding="utf-8").splitlines()[0]
    server = PostgresServer(
        host="127.0.0.1",
        port=port,
        superuser="postgres",
        password=password,
        pid=int(pid_line),
        datadir=datadir,
        bindir=bindir,
        run_as=run_as,
    )
    _wait_ready(server, timeout_seconds)
    return server


def _wait_ready(server: PostgresServer, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((server.host, server.port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"PostgreSQL did not listen on {server.host}:{server.port}")


def stop_postgres(server: PostgresServer) -> None:
    """Stop the cluster by its process id and delete its directory."""
    with contextlib.suppress(ProcessLookupError):
        # SIGINT is PostgreSQL's "fast shutdown": roll back clients, stop cleanly.
        os.kill(server.pid, signal.SIGINT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(server.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGKILL)
    shutil.rmtree(server.datadir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL cluster for the session (needs the binaries: see ``require``)."""
    require(
        find_pg_bindir(),
        "PostgreSQL's server binaries (initdb, pg_ctl)",
        "apt-get install postgresql, or set PG_BINDIR",
    )
    require(importlib.util.find_spec("psycopg"), "psycopg", "pip install 'yosai-secrets[postgres]'")
    server = start_postgres()
    try:
        yield server
    finally:
        stop_postgres(server)
