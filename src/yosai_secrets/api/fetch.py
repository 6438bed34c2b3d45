"""One fetch for many callers: single flight, a deadline, a back-off after a failure.

The API fetches a few documents from Auth0 (the JWKS; the login's discovery document) while
answering requests, some of them from callers who are not signed in. :class:`FetchGate` keeps
that from becoming a lever: concurrent callers share one fetch in flight and wait at most its
deadline (never in a queue, one fetch after another); a failed fetch is remembered for a jittered
back-off period, during which callers are refused at once instead of starting another fetch.

:func:`get_json` reads a small JSON document over HTTP(S) by a deadline for the whole answer
(not a timeout per socket read, which a server dripping one byte at a time never trips).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

__all__ = ["FetchGate", "Unavailable", "get_json"]

_log = logging.getLogger("yosai_secrets.api.fetch")

_MAX_DOCUMENT_BYTES: Final = 512 * 1024
_CHUNK_BYTES: Final = 64 * 1024
_AFTER_DEADLINE_SECONDS: Final = 0.001


class Unavailable(Exception):
    """The document cannot be had now: the fetch failed, timed out, or failed recently."""


class _Flight:
    """One fetch in flight; its callers wait on ``done``."""

    __slots__ = ("done", "error", "started")

    def __init__(self, started: float) -> None:
        self.done = threading.Event()
        self.started = started
        self.error: str | None = None


class FetchGate:
    """Runs ``fetch`` for every caller at once, by a deadline, with a back-off after a failure.

    Args:
        fetch: does the work (and stores its result); raises on failure.
        name: what is fetched, for the log (``"the JWKS from https://..."``).
        deadline_seconds: the longest any caller waits for one fetch.
        backoff_seconds: after a failure, no fetch for this long, up to twice as long (jitter,
            so that many processes do not retry in step).
        clock: a monotonic clock in seconds, for the back-off and the interval between fetches.
        jitter: returns a number in [0, 1) (default: ``random.random``; not for security).
    """

    def __init__(
        self,
        fetch: Callable[[], None],
        *,
        name: str,
        deadline_seconds: float = 5.0,
        backoff_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        if deadline_seconds <= 0 or backoff_seconds < 0:
            raise ValueError("deadline_seconds must be > 0 and backoff_seconds >= 0")
        self._fetch = fetch
        self.name = name
        self.deadline_seconds = deadline_seconds
        self.backoff_seconds = backoff_seconds
        self._clock = clock
        self._jitter = jitter or random.random
        self._lock = threading.Lock()
        self._flight: _Flight | None = None
        self._failed_until = float("-inf")
        self._last_started = float("-inf")
        #: How many fetches were started.
        self.fetches = 0

    def reset(self) -> None:
        """Forget a failure: the next caller may fetch at once (an operator's SIGHUP)."""
        with self._lock:
            self._failed_until = float("-inf")
            self._last_started = float("-inf")

    def backing_off(self) -> bool:
        """Whether a recent failure keeps callers from fetching now."""
        return self._clock() < self._failed_until

    def run(self, *, wait: bool = True, not_within_seconds: float = 0.0) -> bool:
        """Join the fetch in flight, or start one; return whether a fetch ran (or was joined).

        No fetch starts while backing off, nor when the last one started less than
        ``not_within_seconds`` ago (then False). With ``wait=False`` the fetch goes on in the
        background and this returns at once.

        Raises:
            Unavailable: (when waiting) the fetch failed or missed its deadline, or one failed
                less than the back-off period ago.
        """
        with self._lock:
            now = self._clock()
            flight = self._flight
            if flight is None:
                if now < self._failed_until:
                    if not wait:
                        return False
                    raise Unavailable(f"{self.name} failed recently; not retried until back-off")
                if now - self._last_started < not_within_seconds:
                    return False
                flight = self._start(now)
        if wait:
            self._wait(flight)
        return True

    def _start(self, now: float) -> _Flight:
        """Start a fetch in a daemon thread (called with the lock held)."""
        flight = _Flight(time.monotonic())
        self._flight = flight
        self._last_started = now
        self.fetches += 1
        threading.Thread(
            target=self._run, args=(flight,), name="yosai-secrets-fetch", daemon=True
        ).start()
        return flight

    def _run(self, flight: _Flight) -> None:
        try:
            self._fetch()
        except Exception as exc:  # any failure of the fetch, whatever its type, is a failed fetch
            self._finish(flight, f"{type(exc).__name__}: {exc}")
        else:
            self._finish(flight, None)

    def _finish(self, flight: _Flight, error: str | None) -> None:
        with self._lock:
            if error is None:
                self._failed_until = float("-inf")  # a late success still counts
            elif self._flight is flight:
                self._back_off(error)
            if self._flight is flight:
                self._flight = None
            flight.error = error
        flight.done.set()

    def _back_off(self, error: str) -> None:
        """Remember a failure (called with the lock held)."""
        pause = self.backoff_seconds * (1.0 + self._jitter())
        self._failed_until = self._clock() + pause
        _log.warning("could not fetch %s (%s); next try in %.0f s", self.name, error, pause)

    def _wait(self, flight: _Flight) -> None:
        remaining = flight.started + self.deadline_seconds - time.monotonic()
        if not flight.done.wait(max(0.0, remaining)):
            with self._lock:
                if self._flight is flight:
                    # Nobody waits for it any more; a late answer is still kept (see _finish).
                    self._flight = None
                    self._back_off(f"no answer within {self.deadline_seconds:g} s")
            raise Unavailable(f"{self.name} did not answer within {self.deadline_seconds:g} s")
        if flight.error is not None:
            raise Unavailable(f"{self.name} failed: {flight.error}")


def get_json(url: str, *, deadline_seconds: float) -> Mapping[str, Any]:
    """GET ``url`` (http or https) and return its JSON object, all of it within the deadline.

    Raises:
        OSError: no connection, no complete answer by the deadline, or a status other than 200.
        ValueError: not an http(s) address, too large, or not a JSON object.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the address must be http(s)://host/...")
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=deadline_seconds)
    # The socket timeout bounds each read; the timer bounds the whole answer by shutting the
    # socket, which wakes a read blocked on a server that drips its answer.
    expired = threading.Event()
    timer = threading.Timer(deadline_seconds, _shut, (connection, expired))
    timer.daemon = True
    timer.start()
    target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
    try:
        connection.connect()
        if expired.is_set():  # the connection took the whole deadline: shut came too early
            raise TimeoutError
        connection.request("GET", target, headers={"Accept": "application/json"})
        response = connection.getresponse()
        status = response.status
        body = _read_body(response, expired)
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise TimeoutError(f"no complete answer within {deadline_seconds:g} s") from None
        raise OSError(f"no answer: {type(exc).__name__}: {exc}") from None
    finally:
        timer.cancel()
        connection.close()
    if expired.is_set():  # the body may have been cut short by the shutdown
        raise TimeoutError(f"no complete answer within {deadline_seconds:g} s")
    if status != 200:
        raise OSError(f"answered HTTP {status}")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("the document is not a JSON object")
    return cast(Mapping[str, Any], data)


def _read_body(response: http.client.HTTPResponse, expired: threading.Event) -> bytes:
    """The whole body in chunks, stopping at the deadline or past the size limit."""
    parts: list[bytes] = []
    size = 0
    while chunk := response.read1(_CHUNK_BYTES):
        size += len(chunk)
        if size > _MAX_DOCUMENT_BYTES:
            raise ValueError("the document is too large")
        if expired.is_set():
            raise TimeoutError
        parts.append(chunk)
    return b"".join(parts)


def _shut(connection: http.client.HTTPConnection, expired: threading.Event) -> None:
    """At the deadline: wake a blocked read, and make every later read time out at once.

    Linux still delivers data arriving after ``shutdown(SHUT_RD)``, so a dripping server would
    keep a reader going; the tiny timeout ends it at the next pause.
    """
    expired.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.settimeout(_AFTER_DEADLINE_SECONDS)
            sock.shutdown(socket.SHUT_RDWR)
