"""Counters for Prometheus, gathered at scrape time: a cached read pays nothing for them.

The managers already count their hits, misses and stale serves (:meth:`SecretManager.stats`); a
scrape reads those counters, it never asks a manager to count anything more. What the managers did
not count, this module counts where it costs nothing that matters: at each backend call (a call
takes milliseconds; counting it, with its duration in fixed buckets, takes a few hundred
nanoseconds), never on a cache hit.

This module imports nothing optional: the export to Prometheus (the ``metrics`` extra,
``prometheus_client``) lives in :mod:`yosai_secrets.metrics_export` and is imported by the
``/metrics`` endpoint or :func:`~yosai_secrets.metrics_export.collector` only.

- :func:`track` keeps a weak reference to each :class:`~yosai_secrets.manager.SecretManager`
  (every manager registers itself when it is built); :func:`managers` lists the live ones.
- :func:`observe_read` counts one backend call (its backend, outcome and duration); the manager's
  audit hooks (:mod:`yosai_secrets.audit.reads`) call it for every read and batch.
- :func:`snapshot` adds it all up, for the exporter.
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left
from typing import TYPE_CHECKING, Final, NamedTuple

from .errors import SecretNotFoundError

if TYPE_CHECKING:
    from .manager import SecretManager

__all__ = [
    "DURATION_BUCKETS_SECONDS",
    "OUTCOMES",
    "BackendReads",
    "Snapshot",
    "managers",
    "observe_read",
    "reads",
    "snapshot",
    "track",
]

#: Upper bounds of the backend call duration histogram, in seconds (``+Inf`` is implied).
DURATION_BUCKETS_SECONDS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

#: The values of the ``outcome`` label: a backend call answered, found nothing, or failed.
OUTCOMES: Final = ("ok", "not_found", "error")


class BackendReads:
    """Backend calls of this process: a count per backend and outcome, durations per backend.

    Plain integer and float updates under the GIL, without a lock: a lost increment in a thread
    race costs one count of a statistic, never correctness (as the cache's own counters).

    Args:
        buckets: the histogram's upper bounds in seconds, ascending.
    """

    def __init__(self, buckets: tuple[float, ...] = DURATION_BUCKETS_SECONDS) -> None:
        self.buckets = buckets
        self.requests: dict[tuple[str, str], int] = {}
        # backend -> per-bucket counts (not cumulative; the last is +Inf) and the sum of seconds.
        self.durations: dict[str, list[int]] = {}
        self.seconds: dict[str, float] = {}
        #: When set (a multiprocess exporter runs), each duration is also kept here for it.
        self.samples: list[tuple[str, float]] | None = None

    def observe(self, backend: str, seconds: float, error: BaseException | None) -> None:
        """Count one call to ``backend`` that took ``seconds`` and raised ``error`` (or not)."""
        if error is None:
            outcome = "ok"
        elif isinstance(error, SecretNotFoundError):
            outcome = "not_found"
        else:
            outcome = "error"
        key = (backend, outcome)
        self.requests[key] = self.requests.get(key, 0) + 1
        counts = self.durations.get(backend)
        if counts is None:
            counts = self.durations.setdefault(backend, [0] * (len(self.buckets) + 1))
        counts[bisect_left(self.buckets, seconds)] += 1
        self.seconds[backend] = self.seconds.get(backend, 0.0) + seconds
        samples = self.samples
        if samples is not None and len(samples) < 100_000:  # bounded if the exporter stalls
            samples.append((backend, seconds))

    def drain(self) -> list[tuple[str, float]]:
        """Take the durations kept since the last call (empty unless ``samples`` is set)."""
        if self.samples is None:
            return []
        taken, self.samples = self.samples, []
        return taken


class Snapshot(NamedTuple):
    """This process's counters at one moment (sums over its live managers)."""

    cache_hits: int
    cache_misses: int
    stale_served: int
    backend_requests: dict[tuple[str, str], int]
    durations: dict[str, list[int]]
    duration_seconds: dict[str, float]
    vault_token_ttl_seconds: float | None


class _Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.managers: weakref.WeakSet[SecretManager] = weakref.WeakSet()
        self.reads = BackendReads()


_REGISTRY: Final = _Registry()


def track(manager: SecretManager) -> None:
    """Have ``manager``'s counters exported (a weak reference: it is collected as usual)."""
    with _REGISTRY.lock:
        _REGISTRY.managers.add(manager)


def managers() -> list[SecretManager]:
    """The live managers of this process (the default one included once it is built)."""
    with _REGISTRY.lock:
        return list(_REGISTRY.managers)


def reads() -> BackendReads:
    """This process's backend call counts."""
    return _REGISTRY.reads


def observe_read(backend: str, seconds: float, error: BaseException | None) -> None:
    """Count one backend call: see :meth:`BackendReads.observe`."""
    _REGISTRY.reads.observe(backend, seconds, error)


def snapshot() -> Snapshot:
    """Add up the counters of this process now (a scrape's work, never a read's)."""
    hits = misses = stale = 0
    ttl: float | None = None
    for manager in managers():
        stats = manager.stats()
        hits += stats.hits
        misses += stats.misses
        stale += stats.stale_serves
        found = _token_ttl(manager)
        if found is not None:
            ttl = found if ttl is None else min(ttl, found)
    counted = _REGISTRY.reads
    return Snapshot(
        cache_hits=hits,
        cache_misses=misses,
        stale_served=stale,
        backend_requests=dict(counted.requests),
        durations={k: list(v) for k, v in list(counted.durations.items())},
        duration_seconds=dict(counted.seconds),
        vault_token_ttl_seconds=ttl,
    )


def _token_ttl(manager: SecretManager) -> float | None:
    """The least time to live of the Vault tokens ``manager``'s backends hold (None: no Vault)."""
    least: float | None = None
    for backend in manager.backends():
        keeper = getattr(backend, "keeper", None)
        remaining = getattr(keeper, "seconds_until_expiry", None)
        if not callable(remaining):
            continue
        found = remaining()
        if isinstance(found, int | float) and found != float("inf"):
            least = float(found) if least is None else min(least, float(found))
    return least
