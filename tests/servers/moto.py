"""Pytest plugin: moto's server mode, the AWS API emulator (Secrets Manager) for the suite.

- ``start_moto``/``stop_moto``: one ``moto_server -H 127.0.0.1 -p PORT`` (the venv's ``bin``) on a
  free port, waited for until it answers. Plain functions, so that ``bench/`` can use them too.
- The session fixture ``moto_server`` wraps them; the function fixture ``aws_env`` points the
  environment at it (``AWS_ENDPOINT_URL``, dummy credentials, ``AWS_DEFAULT_REGION=us-east-1``,
  ``SECRET_BACKEND=aws``).

The server is stopped by its process id (also when a test fails). Its state is in memory and
shared by the whole session: tests use unique secret names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.servers.process import free_port, stop_process

__all__ = [
    "DUMMY_ACCESS_KEY_ID",
    "DUMMY_SECRET_ACCESS_KEY",
    "REGION",
    "MotoServer",
    "aws_env",
    "find_moto_server",
    "moto_server",
    "start_moto",
    "stop_moto",
]

REGION = "us-east-1"
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"


def find_moto_server() -> Path | None:
    """Return the ``moto_server`` script (next to this interpreter, then PATH), or None."""
    beside = Path(sys.executable).parent / "moto_server"
    if beside.is_file():
        return beside
    on_path = shutil.which("moto_server")
    return Path(on_path) if on_path else None


@dataclass
class MotoServer:
    """A running ``moto_server`` on loopback."""

    endpoint_url: str
    port: int
    pid: int
    workdir: Path
    region: str = REGION
    process: subprocess.Popen[bytes] | None = field(repr=False, default=None)

    def client(self, **kwargs: Any) -> Any:
        """Return a fresh boto3 ``secretsmanager`` client pointed at this server."""
        import boto3

        kwargs.setdefault("region_name", self.region)
        kwargs.setdefault("endpoint_url", self.endpoint_url)
        kwargs.setdefault("aws_access_key_id", DUMMY_ACCESS_KEY_ID)
        kwargs.setdefault("aws_secret_access_key", DUMMY_SECRET_ACCESS_KEY)
        return boto3.session.Session().client("secretsmanager", **kwargs)

    def reset(self) -> None:
        """Forget every secret the server holds (moto's own reset endpoint)."""
        request = urllib.request.Request(  # noqa: S310 - our loopback server
            f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            response.read()

    def log(self) -> str:
        """Return what the server printed so far (for failure messages)."""
        return (self.workdir / "server.log").read_text(encoding="utf-8", errors="replace")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def start_moto(
    port: int | None = None,
    *,
    extra_env: dict[str, str] | None = None,
    timeout_seconds: float = 30.0,
) -> MotoServer:
    """Start ``moto_server`` on 127.0.0.1 and wait until it answers.

    ``extra_env`` configures moto itself, e.g. ``{"INITIAL_NO_AUTH_ACTION_COUNT": "0"}`` to make
    it check credentials and IAM policies.

    Raises:
        RuntimeError: ``moto_server`` is not installed or did not come up in time.
    """
    binary = find_moto_server()
    if binary is None:
        raise RuntimeError("moto_server was not found: pip install 'moto[server]'")
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="yosai-moto-"))
    log = (workdir / "server.log").open("wb")
    # No AWS_* from a developer's shell reaches the emulator (it reads some of them itself).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(extra_env or {})
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=workdir,
    )
    log.close()
    server = MotoServer(
        endpoint_url=f"http://127.0.0.1:{port}",
        port=port,
        pid=process.pid,
        workdir=workdir,
        process=process,
    )
    deadline = time.monotonic() + timeout_seconds
    while not _answers(server.endpoint_url):
        if process.poll() is not None or time.monotonic() > deadline:
            output = server.log()[-2000:]
            stop_moto(server)
            raise RuntimeError(f"moto_server on port {port} did not come up:\n{output}")
        time.sleep(0.05)
    return server


def stop_moto(server: MotoServer, grace_seconds: float = 10.0) -> None:
    """Stop the server by its process id (SIGTERM, then SIGKILL) and delete its directory."""
    if server.process is not None:
        stop_process(server.process, grace_seconds)
    shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A ``moto_server`` for the session (AWS Secrets Manager emulator on loopback)."""
    require(find_moto_server(), "moto_server", "pip install 'moto[server]'")
    server = start_moto()
    try:
        yield server
    finally:
        stop_moto(server)


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """Point the environment at the session's moto server and select ``SECRET_BACKEND=aws``."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", moto_server.region)
    monkeypatch.setenv("SECRET_BACKEND", "aws")
    return moto_server
