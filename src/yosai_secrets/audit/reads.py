"""The manager's audit hooks: one event per backend read, and per-key counts of cache hits.

A :class:`ReadAudit` wraps every call the manager makes to a backend (:meth:`ReadAudit.fetch`,
:meth:`ReadAudit.record` for batch results) and emits a ``read`` event for it, ok or failed. Cache
hits never emit: the manager counts them on the hit path itself (an attribute increment on its
memo of the key, no more than the plain counter it replaced), and :meth:`ReadAudit.audit_hits`
adds them up when a summary asks.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from time import perf_counter
from typing import Any, Protocol

from .. import forksafe
from ..backends import Backend, Fetched
from ..fields import where
from ..metrics import observe_read
from ..tracing import read_span
from . import events

__all__ = ["Memo", "ReadAudit"]


class Memo(Protocol):
    """What the manager memoises per key: its hit count is the part read here."""

    hits: int


class ReadAudit:
    """Audit hooks of one manager.

    Args:
        memos: the manager's key -> memo table (read, never written, here).
        enabled: emit ``read`` events and be part of :func:`events.summary` (``YOSAI_AUDIT``).
        summary_seconds: the periodic summary's interval, started with the first event (not
            before: a process that never reads a backend runs no timer thread).
    """

    def __init__(
        self, memos: Mapping[str, Memo], *, enabled: bool, summary_seconds: float = 0.0
    ) -> None:
        self.enabled = enabled
        self._summary_seconds = summary_seconds
        self._memos = memos
        self._lock = threading.Lock()
        self._hits: dict[str, int] = {}  # hits of memos since dropped, and of the slower paths
        self.folded_fast_hits = 0  # the memos' part of _hits (the cache counted the others)
        self._inherited: dict[str, int] = {}  # a forked child's hits at its birth: its parent's
        if enabled:
            events.register_hit_source(self)
            forksafe.register(self)

    def fetch(self, backend: Backend, path: str, keys: str | Sequence[str]) -> Fetched:
        """Read ``path`` from ``backend`` for ``keys``, emitting the event; errors pass through.

        The call is counted and timed for the metrics (:func:`yosai_secrets.metrics.observe_read`)
        whether or not auditing is on.
        """
        started = perf_counter()
        try:
            with read_span(backend.name, path, keys):
                raw = backend.fetch(path)
        except BaseException as exc:
            observe_read(backend.name, perf_counter() - started, exc)
            self.record(backend, path, keys, exc)
            raise
        observe_read(backend.name, perf_counter() - started, None)
        self.record(backend, path, keys, None)
        return raw

    def fetch_many(self, backend: Any, paths: list[str]) -> dict[str, Any]:
        """Call ``backend.fetch_many(paths)``, counted and timed as one backend call.

        The caller records each path's event (:meth:`record`); a batch that raises is counted as
        failed, one that answers as ``ok`` (its per-path errors are in their events).
        """
        started = perf_counter()
        try:
            with read_span(str(backend.name), ",".join(paths), ()):
                results: dict[str, Any] = backend.fetch_many(paths)
        except BaseException as exc:
            observe_read(str(backend.name), perf_counter() - started, exc)
            raise
        observe_read(str(backend.name), perf_counter() - started, None)
        return results

    def record(
        self,
        backend: Backend,
        path: str,
        keys: str | Sequence[str],
        error: BaseException | None,
    ) -> None:
        """Emit the event of one read of ``path`` (``error``: what it raised, if it failed)."""
        if not self.enabled:
            return
        if self._summary_seconds:
            events.start_summary_timer(self._summary_seconds)
            self._summary_seconds = 0.0  # once: a later manager's interval may replace it
        try:
            names = [keys] if isinstance(keys, str) else list(keys)
            events.emit_access(
                names[0] if names else path,
                backend=backend.name,
                location=where(backend, path),
                outcome="ok" if error is None else type(error).__name__,
                version=_version(backend, path) if error is None else None,
                also=names[1:],
            )
        except Exception:  # describing the source failed: the read itself must go on
            events.count_write_failure()

    def hit(self, key: str) -> None:
        """Count a hit served off the fast path (the cache had the path; no backend call)."""
        with self._lock:
            events.bump(self._hits, key)

    def fold(self, key: str, memo: Memo) -> None:
        """Keep the hits of a memo the manager is about to drop."""
        if memo.hits:
            with self._lock:
                events.bump(self._hits, key, memo.hits)
                self.folded_fast_hits += memo.hits
                memo.hits = 0

    def fast_hits(self) -> int:
        """Hits served by the manager's memo, which the cache's own counter never saw."""
        return self.folded_fast_hits + sum(m.hits for m in list(self._memos.values()))

    def audit_hits(self) -> dict[str, int]:
        """Cache hits per key in this process since the manager was created (or it was forked)."""
        with self._lock:
            totals = self._totals()
        for key, before in self._inherited.items():
            left = totals.get(key, 0) - before
            if left > 0:
                totals[key] = left
            else:
                totals.pop(key, None)
        return totals

    def after_fork_in_child(self) -> None:
        """In a forked child: a new lock, and the parent's hits so far set aside (not reported)."""
        self._lock = threading.Lock()
        self._inherited = self._totals()  # only this thread runs in the child yet

    def _totals(self) -> dict[str, int]:
        totals = dict(self._hits)
        for key, memo in list(self._memos.items()):
            if memo.hits:
                totals[key] = totals.get(key, 0) + memo.hits
        return totals


def _version(backend: Any, path: str) -> str | int | None:
    """The version just read, when the backend says so cheaply (``fetched_version(path)``)."""
    getter = getattr(backend, "fetched_version", None)
    if not callable(getter):
        return None
    version = getter(path)
    return version if isinstance(version, str | int) else None
