"""What the fault tests and the soak benchmark share: a relay that can be cut, Raft node restarts.

- :class:`FaultProxy`: a loopback TCP relay in front of one server port. ``cut()`` resets every
  connection, open or new (the server is gone, as a client sees it), ``hang()`` accepts and never
  answers (a server that stopped responding), ``restore()`` relays again, and ``delay_seconds``
  adds latency to each answer (a network). It counts the connections it accepts in each mode,
  which is how a test counts a client's attempts during an outage. :class:`ProxyProcess` runs
  one in a child process (a benchmark's own threads, descriptors and GIL stay its own).
- :func:`restart_node` and :func:`make_whole`: bring SIGKILLed nodes of a
  :class:`~tests.servers.openbao.RaftCluster` back (same configuration, same Raft data), unsealed,
  so that tests sharing one cluster each start from three healthy nodes.
- :func:`wait_for_value`: poll a node until a KV v2 path holds an expected field value.
- :class:`Load`: writer threads (KV v2 writes through ``VaultBackend.request``, each to a path of
  its own, every acknowledged one remembered) and reader threads (``SecretManager.get``, each
  read timed), and :class:`Figures`, what they measured.

Every process and thread here is stopped by its own handle, never by name.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import socket
import struct
import subprocess
import threading
import time
import urllib.error
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tests.servers.openbao import RaftCluster, RaftNode, api, find_bao
from yosai_secrets.backends.vault import VaultBackend
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.manager import SecretManager

__all__ = [
    "FaultProxy",
    "Figures",
    "Load",
    "ProxyProcess",
    "make_whole",
    "restart_node",
    "wait_for_value",
    "wait_until",
]

UP: Final = "up"
DOWN: Final = "down"
HUNG: Final = "hung"
_LINGER_RESET: Final = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset


def wait_until(predicate: Callable[[], bool], timeout_seconds: float, what: str) -> None:
    """Poll ``predicate`` every 50 ms until true; raise ``AssertionError`` naming ``what``."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, urllib.error.URLError):
            if predicate():
                return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_seconds:g} s waiting for {what}")


class FaultProxy:
    """A loopback TCP relay to ``127.0.0.1:upstream_port`` that a test can cut, hang and restore.

    Args:
        upstream_port: the server's port.
        delay_seconds: latency added before relaying each chunk the server answers.
    """

    def __init__(self, upstream_port: int, *, delay_seconds: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.delay_seconds = delay_seconds
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self.addr = f"http://127.0.0.1:{self.port}"
        self.mode = UP
        #: Connections accepted, by the mode the relay was in at the time.
        self.accepted: dict[str, int] = {UP: 0, DOWN: 0, HUNG: 0}
        #: Chunks relayed from clients to the server (about one per request).
        self.relayed = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._acceptor.start()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connections(self) -> int:
        """Every connection accepted so far, whatever the mode."""
        return sum(self.accepted.values())

    def cut(self) -> None:
        """Reset every open connection and every new one until :meth:`restore`."""
        self.mode = DOWN
        self._drop_all()

    def hang(self) -> None:
        """Accept new connections but never answer them (open ones are reset)."""
        self.mode = HUNG
        self._drop_all()

    def restore(self) -> None:
        """Relay again (connections cut before stay cut; clients open new ones)."""
        self._drop_all()  # a connection held while hung must not come back to life
        self.mode = UP

    def close(self) -> None:
        """Stop accepting, close every connection and wait for the relay's threads."""
        self._stopped.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        self._drop_all()
        for thread in list(self._threads):
            thread.join(timeout=5)

    # -- internals ------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            mode = self.mode
            with self._lock:
                self.accepted[mode] += 1
            if mode == DOWN:
                _reset(client)
            elif mode == HUNG:
                self._track(client)  # held open, never read: closed by restore() or close()
            else:
                self._start(self._relay, client)

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name="fault-proxy-relay", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.update(socks)

    def _drop_all(self) -> None:
        with self._lock:
            doomed, self._open = self._open, set()
        for sock in doomed:
            _reset(sock)

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._track(client, upstream)
        # The answers are delayed, not the requests: a read reaches the server at once and its
        # answer is still on the way when the value changes (the window an invalidation races).
        self._start(self._pipe, upstream, client, True)
        self._pipe(client, upstream, False)

    def _pipe(self, src: socket.socket, dst: socket.socket, delayed: bool) -> None:
        try:
            while data := src.recv(65536):
                if self.mode != UP:
                    break
                if delayed and self.delay_seconds:
                    time.sleep(self.delay_seconds)
                dst.sendall(data)
                if not delayed:
                    with self._lock:
                        self.relayed += 1
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            for sock in (src, dst):
                _reset(sock)


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset (no orderly shutdown: the peer sees the connection die)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class ProxyProcess:
    """A :class:`FaultProxy` in a child process, driven through a pipe; stopped by its handle.

    Same ``addr``, ``cut()``, ``hang()``, ``restore()`` and ``accepted`` as the proxy itself.
    """

    def __init__(self, upstream_port: int, *, delay_seconds: float = 0.0) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve_proxy, args=(child_end, upstream_port, delay_seconds), daemon=True
        )
        self._process.start()
        child_end.close()
        self.port = int(self._conn.recv())
        self.addr = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ProxyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def accepted(self) -> dict[str, int]:
        """Connections accepted, by mode."""
        answer: dict[str, int] = self._ask("accepted")
        return answer

    def cut(self) -> None:
        """See :meth:`FaultProxy.cut`."""
        self._ask("cut")

    def hang(self) -> None:
        """See :meth:`FaultProxy.hang`."""
        self._ask("hang")

    def restore(self) -> None:
        """See :meth:`FaultProxy.restore`."""
        self._ask("restore")

    def close(self) -> None:
        """Stop the child (by its handle) and wait for it."""
        with contextlib.suppress(OSError, EOFError):
            self._ask("close")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=10)
        self._conn.close()

    def _ask(self, command: str) -> Any:
        self._conn.send(command)
        return self._conn.recv()


def _serve_proxy(conn: Any, upstream_port: int, delay_seconds: float) -> None:
    """The child's side of :class:`ProxyProcess`: one proxy, commands from the pipe."""
    proxy = FaultProxy(upstream_port, delay_seconds=delay_seconds)
    conn.send(proxy.port)
    try:
        while True:
            try:
                command = conn.recv()
            except EOFError:
                return
            if command in ("cut", "hang", "restore"):
                getattr(proxy, command)()
            conn.send(dict(proxy.accepted) if command == "accepted" else None)
            if command == "close":
                return
    finally:
        proxy.close()


# -- Raft clusters -------------------------------------------------------------------------------


def _health(addr: str) -> int:
    return api(addr, "GET", "sys/health", timeout_seconds=1)[0]


def restart_node(cluster: RaftCluster, node: RaftNode, timeout_seconds: float = 30.0) -> None:
    """Start a stopped node again from its configuration and Raft data, and unseal it.

    It rejoins as the voter it was; returns once it answers as active (200) or standby (429).
    """
    bao = find_bao()
    assert bao is not None, "the bao binary disappeared"
    config = cluster.workdir / f"{node.node_id}.hcl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "OPENBAO_"))}
    env["HOME"] = str(cluster.workdir)
    with (cluster.workdir / f"{node.node_id}.log").open("ab") as log:
        node.process = subprocess.Popen(
            [str(bao), "server", f"-config={config}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cluster.workdir,
        )
    wait_until(lambda: _health(node.addr) in (501, 503), timeout_seconds, f"{node.node_id} up")
    wait_until(
        lambda: (
            api(node.addr, "PUT", "sys/unseal", {"key": cluster.unseal_key})[1].get("sealed")
            is False
        ),
        timeout_seconds,
        f"{node.node_id} to unseal",
    )
    wait_until(lambda: _health(node.addr) in (200, 429), timeout_seconds, f"{node.node_id} ready")


def make_whole(cluster: RaftCluster, timeout_seconds: float = 60.0) -> RaftNode:
    """Restart every dead node, wait for a leader that every node knows; return the leader."""
    for node in cluster.nodes:
        if not node.alive():
            restart_node(cluster, node)
    leader = cluster.leader(timeout_seconds=timeout_seconds)

    def all_follow() -> bool:
        return all(
            api(n.addr, "GET", "sys/leader", timeout_seconds=1)[1].get("leader_address")
            == leader.addr
            for n in cluster.nodes
        )

    wait_until(all_follow, timeout_seconds, f"every node to follow {leader.node_id}")
    return leader


def wait_for_value(
    addr: str, token: str, path: str, field: str, value: str, timeout_seconds: float = 10.0
) -> None:
    """Wait until the node at ``addr`` reads ``value`` in ``field`` of the KV v2 ``path``."""

    def holds() -> bool:
        status, body = api(addr, "GET", path, token=token, timeout_seconds=1)
        return status == 200 and (body.get("data") or {}).get("data", {}).get(field) == value

    wait_until(holds, timeout_seconds, f"{path}#{field} on {addr}")


# -- load: writers and readers ------------------------------------------------------------------


@dataclass
class Figures:
    """What a :class:`Load` measured."""

    writes_attempted: int = 0
    writes_acked: int = 0
    writes_lost: int = 0
    write_errors: Counter[str] = field(default_factory=Counter)
    reads: int = 0
    reads_failed: int = 0
    read_errors: list[str] = field(default_factory=list)
    longest_stall_seconds: float = 0.0

    def text(self) -> str:
        """One line per figure, for ``-s`` and the test's report section."""
        errors = ", ".join(f"{n} x {kind}" for kind, n in self.write_errors.most_common(4))
        return (
            f"writes attempted={self.writes_attempted} acked={self.writes_acked} "
            f"lost={self.writes_lost} (refused: {errors or 'none'})\n"
            f"reads={self.reads} failed={self.reads_failed} "
            f"longest stall (slowest get)={self.longest_stall_seconds * 1000:.0f} ms"
        )


class Load:
    """Writers and readers running against a cluster until :meth:`stop`.

    Args:
        writer: the backend writes go through (``VaultBackend.request``).
        manager: the manager readers read through (its cache warmed by :meth:`start`).
        expected: each key readers read, and the value it holds.
        write_prefix: the KV v2 path under which each write gets a path of its own.
        writers: writer threads.
        readers: reader threads.
    """

    def __init__(
        self,
        writer: VaultBackend,
        manager: SecretManager,
        expected: Mapping[str, str],
        write_prefix: str,
        *,
        writers: int = 2,
        readers: int = 4,
    ) -> None:
        self.writer = writer
        self.manager = manager
        self.expected = dict(expected)
        self.write_prefix = write_prefix.rstrip("/")
        self.figures = Figures()
        #: (path, the value written) of every acknowledged write.
        self.acked: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._write_loop, args=(n,), daemon=True)
            for n in range(writers)
        ] + [
            threading.Thread(target=self._read_loop, args=(n,), daemon=True) for n in range(readers)
        ]

    def start(self) -> None:
        """Warm the cache with every key, then start the threads."""
        for key, value in self.expected.items():
            assert self.manager.get(key) == value, key
        for thread in self._threads:
            thread.start()

    def stop(self) -> Figures:
        """Stop and join the threads; return the figures (writes not yet verified)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads), "a load thread did not stop"
        self.figures.writes_acked = len(self.acked)
        return self.figures

    def verify(self, reader: VaultBackend) -> int:
        """Read back every acknowledged write through ``reader``; return (and record) how many
        are missing or hold another value."""
        lost = 0
        paths = [path for path, _ in self.acked]
        for start in range(0, len(paths), 64):
            chunk = self.acked[start : start + 64]
            found = reader.fetch_many([path for path, _ in chunk])
            for path, value in chunk:
                got = found.get(path)
                if not isinstance(got, Mapping) or got.get("value") != value:
                    lost += 1
        self.figures.writes_lost = lost
        return lost

    def _write_loop(self, number: int) -> None:
        seq = 0
        while not self._stop.is_set():
            seq += 1
            path = f"{self.write_prefix}/w{number}-{seq}"
            value = f"{number}-{seq}-{random.getrandbits(32):08x}"
            with self._lock:
                self.figures.writes_attempted += 1
            try:
                self.writer.request("POST", path, {"data": {"value": value}})
            except ConfigurationError as exc:
                with self._lock:
                    self.figures.write_errors[_kind(exc)] += 1
                time.sleep(0.05)
                continue
            with self._lock:
                self.acked.append((path, value))
            time.sleep(0.005)  # a steady load, not a flood that starves the readers of the GIL

    def _read_loop(self, number: int) -> None:
        keys = list(self.expected)
        index = number
        while not self._stop.is_set():
            key = keys[index % len(keys)]
            index += 1
            start = time.perf_counter()
            try:
                value = self.manager.get(key)
            except ConfigurationError as exc:
                value, problem = None, f"{key}: {type(exc).__name__}: {exc}"
            else:
                problem = "" if value == self.expected[key] else f"{key}: another value"
            elapsed = time.perf_counter() - start
            with self._lock:
                figures = self.figures
                figures.reads += 1
                figures.longest_stall_seconds = max(figures.longest_stall_seconds, elapsed)
                if problem:
                    figures.reads_failed += 1
                    figures.read_errors.append(problem)
            time.sleep(0.001)


def _kind(exc: ConfigurationError) -> str:
    """A short name for why a write was refused (the status, or the error's type)."""
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__} {status}" if status is not None else type(exc).__name__
