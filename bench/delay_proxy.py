"""A loopback TCP relay that counts HTTP requests and adds a delay to each: a network, simulated.

Used by the benchmarks that compare how many round trips each contender makes (``proxy(...)``
runs a :class:`DelayProxy` in a child process, stopped by its process id afterwards).
"""

from __future__ import annotations

import multiprocessing
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

__all__ = ["DelayProxy", "ProxyHandle", "proxy"]

_METHODS = (b"GET", b"POST", b"PUT", b"LIST", b"DELETE", b"PATCH", b"HEAD")


class DelayProxy:
    """A loopback TCP relay that counts HTTP requests and delays each by ``delay_seconds``.

    Each client connection gets its own upstream connection and two relay threads, so concurrent
    requests are delayed concurrently, as on a real network. It runs in its own process (see
    :func:`proxy`) so that its threads do not compete with the client for the GIL.
    """

    def __init__(self, upstream_port: int, delay_seconds: float, counter: Any, reads: Any) -> None:
        self.upstream_port = upstream_port
        self.delay_seconds = delay_seconds
        self.counter = counter
        self.reads = reads
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]

    def serve_forever(self) -> None:
        """Accept connections until the process is terminated."""
        while True:
            client, _ = self.listener.accept()
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()
        self._pipe(client, upstream, True)

    def _pipe(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        try:
            while data := src.recv(65536):
                if requests and data.split(b" ", 1)[0] in _METHODS:
                    with self.counter.get_lock():
                        self.counter.value += 1
                    if data.startswith(b"GET /v1/secret/data/"):
                        with self.reads.get_lock():
                            self.reads.value += 1
                    if self.delay_seconds:
                        time.sleep(self.delay_seconds)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def _run_proxy(
    upstream_port: int, delay_seconds: float, counter: Any, reads: Any, ports: Any
) -> None:
    relay = DelayProxy(upstream_port, delay_seconds, counter, reads)
    ports.put(relay.port)
    relay.serve_forever()


class ProxyHandle:
    """The client side of a proxy process: its address and its counters."""

    def __init__(self, port: int, counter: Any, reads: Any) -> None:
        self.addr = f"http://127.0.0.1:{port}"
        self._counter = counter
        self._reads = reads

    @property
    def requests(self) -> int:
        """HTTP requests relayed since the last reset."""
        return int(self._counter.value)

    @property
    def reads(self) -> int:
        """KV v2 reads (GET secret/data/...) among them."""
        return int(self._reads.value)

    def reset(self) -> None:
        """Set the counters to zero."""
        for value in (self._counter, self._reads):
            with value.get_lock():
                value.value = 0


@contextmanager
def proxy(upstream_port: int, delay_seconds: float) -> Iterator[ProxyHandle]:
    """A :class:`DelayProxy` in a child process, stopped by its process id afterwards."""
    context = multiprocessing.get_context("fork")
    counter = context.Value("i", 0)
    reads = context.Value("i", 0)
    ports = context.Queue()
    child = context.Process(
        target=_run_proxy,
        args=(upstream_port, delay_seconds, counter, reads, ports),
        daemon=True,
    )
    child.start()
    try:
        yield ProxyHandle(ports.get(timeout=10), counter, reads)
    finally:
        child.terminate()
        child.join(5)
