"""The in-memory secret cache: TTL, single-flight, stale-if-error, invalidation, statistics.

Entries are keyed by ``(backend, path)``, the unit of reading, so several fields of one path cost
one backend call. Design choices, each for a reason:

- **Single-flight.** Many threads asking for one cold key wait on one backend call.
- **Refresh without blocking readers.** Past its TTL an entry is refreshed by one background call;
  readers wait for it at most ``refresh_wait_seconds`` (a healthy backend answers well within it,
  so they get the fresh value), and otherwise get the previous value at once.
- **Stale-if-error, bounded.** When a refresh fails, the previous value is served for at most
  ``max_stale_seconds`` past its expiry, with one warning naming the key; after that, the error.
  A failed refresh is retried no more often than every ``retry_interval_seconds``.
- **Jitter.** With ``jitter`` (``SECRET_CACHE_JITTER``, a fraction ``j`` of the TTL), each entry's
  expiry is drawn in ``[ttl*(1-j), ttl]`` (never past the TTL the operator set), so processes that
  started together refresh apart; a failing entry's next retry is drawn in
  ``[interval, interval*(1+j)]`` (never sooner than the interval). The draws come from
  :func:`~yosai_secrets.jitter.urandom_fraction`, which a forked child does not share.
- **Invalidation wins.** A value fetched before an invalidation is never stored after it.
- **Bounded.** At most ``max_entries``; the entry fetched longest ago is evicted first.
- **A deadline for every read.** With ``read_timeout_seconds``, a cold read runs its loader in a
  daemon thread and nobody (the caller, nor anyone waiting for the same key) waits longer than
  that: past it, :class:`~yosai_secrets.errors.BackendUnavailableError`, or the stale value when
  one may be served. A loader that never returns occupies one thread, never its callers; later
  readers of that key join its flight rather than start another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Final, Generic, NamedTuple, TypeVar

from .errors import BackendUnavailableError, ConfigurationError
from .jitter import Rng, shortened, urandom_fraction

__all__ = ["CacheEntry", "CacheStats", "SecretCache"]


V = TypeVar("V")

_NEVER: Final = float("-inf")
#: How long the first value read after an invalidate() is kept before it is read once more.
SETTLE_SECONDS: Final = 1.0


class CacheStats(NamedTuple):
    """Counters since the cache was created (immutable; fields by name)."""

    hits: int
    misses: int
    backend_calls: int
    errors: int
    stale_serves: int
    evictions: int
    size: int


class CacheEntry(Generic[V]):
    """One cached value and its timing (all times from the cache's clock, in seconds).

    A plain class rather than a dataclass: importing ``dataclasses`` costs a few milliseconds at
    start-up (it imports ``inspect``), which every ``import yosai_secrets`` would pay.
    """

    __slots__ = (
        "error",
        "expires_at",
        "failing",
        "fetched_at",
        "retry_at",
        "stale_until",
        "value",
    )

    def __init__(
        self,
        value: V,
        fetched_at: float,
        expires_at: float,
        stale_until: float,
        retry_at: float = _NEVER,
        failing: bool = False,
    ) -> None:
        self.value = value
        self.fetched_at = fetched_at
        self.expires_at = expires_at
        self.stale_until = stale_until
        self.retry_at = retry_at
        self.failing = failing
        # The last failure once nothing may be served any more (past max_stale), raised again
        # until retry_at rather than calling the failing store once per read.
        self.error: BaseException | None = None

    def __repr__(self) -> str:  # never the value
        return (
            f"CacheEntry(fetched_at={self.fetched_at}, expires_at={self.expires_at}, "
            f"stale_until={self.stale_until}, failing={self.failing})"
        )


class _Done:
    """A one-shot "finished" signal, cheaper to create than a ``threading.Event``.

    Every cold read makes one, so its cost is on the path of a configuration load: a plain lock,
    held from creation until ``set()``, which waiters acquire and release in turn.
    """

    __slots__ = ("_finished", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._finished = False

    def set(self) -> None:
        self._finished = True
        self._lock.release()

    def is_set(self) -> bool:
        return self._finished

    def wait(self, timeout: float | None = None) -> bool:
        if self._finished:
            return True
        if self._lock.acquire(timeout=-1 if timeout is None else timeout):
            self._lock.release()
        return self._finished


class _Flight(Generic[V]):
    """One backend call in progress, shared by everyone who needs its result."""

    __slots__ = ("done", "entry", "error")

    def __init__(self) -> None:
        self.done = _Done()
        self.entry: CacheEntry[V] | None = None
        self.error: BaseException | None = None


class SecretCache(Generic[V]):
    """A thread-safe TTL cache with single-flight loading and bounded stale-if-error.

    Args:
        ttl_seconds: how long a fetched value is fresh.
        max_stale_seconds: how long past its expiry a value may be served while the backend fails.
        max_entries: the most entries kept.
        clock: a monotonic clock in seconds (inject a fake one in tests).
        refresh_wait_seconds: how long a reader of an expired entry waits for its refresh.
        retry_interval_seconds: the least time between two refreshes of a failing entry.
        read_timeout_seconds: the longest any reader waits for a backend (None: no limit).
        jitter: the fraction of the TTL (and of the retry interval) drawn at random per entry
            (0: none).
        rng: a source of floats in [0, 1) for the jitter (inject a fixed one in tests).
    """

    def __init__(
        self,
        *,
        ttl_seconds: float = 300.0,
        max_stale_seconds: float = 3600.0,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        refresh_wait_seconds: float = 0.05,
        retry_interval_seconds: float = 5.0,
        read_timeout_seconds: float | None = None,
        jitter: float = 0.0,
        rng: Rng = urandom_fraction,
    ) -> None:
        if ttl_seconds < 0:
            raise ConfigurationError(f"cache ttl_seconds must be >= 0, got {ttl_seconds}")
        if max_stale_seconds < 0:
            raise ConfigurationError(
                f"cache max_stale_seconds must be >= 0, got {max_stale_seconds}"
            )
        if max_entries < 1:
            raise ConfigurationError(f"cache max_entries must be >= 1, got {max_entries}")
        self.ttl_seconds = ttl_seconds
        self.max_stale_seconds = max_stale_seconds
        self.max_entries = max_entries
        self.clock = clock
        self.refresh_wait_seconds = refresh_wait_seconds
        self.retry_interval_seconds = retry_interval_seconds
        if read_timeout_seconds is not None and read_timeout_seconds <= 0:
            raise ConfigurationError(
                f"the read timeout must be > 0 seconds, got {read_timeout_seconds}"
            )
        self.read_timeout_seconds = read_timeout_seconds
        if not 0 <= jitter <= 1:
            raise ConfigurationError(f"cache jitter must be in [0, 1], got {jitter}")
        self.jitter = jitter
        self._rng = rng
        self._lock = threading.Lock()
        self._entries: dict[Hashable, CacheEntry[V]] = {}
        self._flights: dict[Hashable, _Flight[V]] = {}
        self._generation = 0
        # After invalidate(): until when a new read is cached for SETTLE_SECONDS only (all keys,
        # or per key). See invalidate().
        self._settle_all_until = 0.0
        self._settling: dict[Hashable, float] = {}
        # Plain counters: a lost increment under a thread race costs a statistic, not correctness.
        self.hits = 0
        self.misses = 0
        self.backend_calls = 0
        self.errors = 0
        self.stale_serves = 0
        self.evictions = 0

    def get(self, key: Hashable, loader: Callable[[], V], label: str = "") -> CacheEntry[V]:
        """Return the entry for ``key``, calling ``loader`` (once, for all waiters) when needed.

        ``label`` names the secret in warnings (never its value). Raises whatever ``loader``
        raises when no value may be served.
        """
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and now < entry.expires_at:
            self.hits += 1
            return entry
        if entry is not None and entry.failing and now < entry.retry_at:
            if now < entry.stale_until:
                self.stale_serves += 1
                return entry
            if entry.error is not None:
                self.errors += 1
                raise entry.error
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now < entry.expires_at:
                self.hits += 1
                return entry
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = _Flight()
                self._flights[key] = flight
            generation = self._generation
        if entry is None:
            self.misses += 1
            if leader:
                self._load_bounded(key, loader, flight, generation, None, label)
            else:
                flight.done.wait(self.read_timeout_seconds)
            return self._outcome(flight, key, label)
        return self._serve_expired(key, loader, label, entry, flight, leader, generation, now)

    def _serve_expired(
        self,
        key: Hashable,
        loader: Callable[[], V],
        label: str,
        entry: CacheEntry[V],
        flight: _Flight[V],
        leader: bool,
        generation: int,
        now: float,
    ) -> CacheEntry[V]:
        """An expired entry: refresh it (in the background when caching), serve stale if due."""
        if self.ttl_seconds == 0:
            # No caching asked for: read now, keeping stale-if-error.
            if leader:
                self._load_bounded(key, loader, flight, generation, entry, label)
            else:
                flight.done.wait(self.read_timeout_seconds)
            if flight.entry is not None:
                return flight.entry
            if now < entry.stale_until:
                self.stale_serves += 1
                return entry
            return self._outcome(flight, key, label)
        if leader:
            threading.Thread(
                target=self._load,
                args=(key, loader, flight, generation, entry, label),
                name=f"yosai-secrets-refresh-{label or 'key'}",
                daemon=True,
            ).start()
        flight.done.wait(self.refresh_wait_seconds)
        if flight.done.is_set() and flight.entry is not None:
            return flight.entry
        if now < entry.stale_until:
            self.stale_serves += 1
            return entry
        flight.done.wait(self.read_timeout_seconds)
        return self._outcome(flight, key, label)

    def load_unshared(self, key: Hashable, loader: Callable[[], V]) -> CacheEntry[V]:
        """Return the entry for ``key``, loading it in this thread without single-flight.

        For sources read in microseconds (variables, local files), where sharing one read among
        threads would cost more than the read; they have no outage to bridge, so no stale serving.
        """
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and now < entry.expires_at:
            self.hits += 1
            return entry
        self.misses += 1
        self.backend_calls += 1
        generation = self._generation
        try:
            value = loader()
        except BaseException:
            self.errors += 1
            raise
        entry = self._new_entry(value)
        with self._lock:
            if self._generation == generation:
                self._store(key, entry)
        return entry

    def put(self, key: Hashable, value: V) -> CacheEntry[V]:
        """Store a value fetched elsewhere (a batch read) as a fresh entry, and return it."""
        with self._lock:
            generation = self._generation
        flight: _Flight[V] = _Flight()
        self.backend_calls -= 1  # _load counts a call; the batch that fetched it counted its own
        self._load(key, lambda: value, flight, generation, None, "")
        return self._outcome(flight, key, "")

    def peek(self, key: Hashable) -> CacheEntry[V] | None:
        """Return the entry for ``key`` if one is held, fresh or not, without loading."""
        return self._entries.get(key)

    def invalidate(self, predicate: Callable[[Hashable], bool] | None = None) -> int:
        """Forget the entries whose key satisfies ``predicate`` (all when ``None``).

        Returns how many were forgotten. Values being fetched right now are not stored.
        """
        with self._lock:
            self._generation += 1
            doomed = [k for k in self._entries if predicate is None or predicate(k)]
            for k in doomed:
                dead = self._entries.pop(k)
                # Anyone holding the entry object sees it expired and unservable at once.
                dead.expires_at = dead.stale_until = _NEVER
            # A read in flight began before this call: a get() that starts after it returns must
            # not join it (it would return the older value), so it starts a read of its own.
            flying = [k for k in self._flights if predicate is None or predicate(k)]
            for k in flying:
                del self._flights[k]
            self._settle(predicate is None, doomed + flying)
            return len(doomed)

    def _settle(self, everything: bool, keys: list[Hashable]) -> None:
        # An invalidation says "the value changed". The store's replicas may not all have the
        # change yet (a standby serving reads, an eventually consistent API): the first read
        # after it is kept SETTLE_SECONDS only, then read once more, so a stale answer cannot
        # stick for a whole TTL. Called with the lock held.
        now = self.clock()
        until = now + SETTLE_SECONDS
        if everything:
            self._settle_all_until = until
            self._settling.clear()
            return
        if len(self._settling) > self.max_entries:  # keys invalidated and never read again
            self._settling = {k: t for k, t in self._settling.items() if t > now}
        for k in keys:
            self._settling[k] = until

    def after_fork_in_child(self) -> None:
        """In a forked child: a new lock and no flights (their loaders ran in the parent).

        The entries are kept: they are the parent's values, and valid. A flight of the parent
        would never finish here (its thread was not copied), so a waiter would hang on it.
        """
        self._lock = threading.Lock()
        self._flights = {}
        self._generation += 1  # a load the parent started is never stored here

    def stats(self) -> CacheStats:
        """Return the counters and the current size."""
        return CacheStats(
            hits=self.hits,
            misses=self.misses,
            backend_calls=self.backend_calls,
            errors=self.errors,
            stale_serves=self.stale_serves,
            evictions=self.evictions,
            size=len(self._entries),
        )

    # -- internals ---------------------------------------------------------------------------

    def _outcome(self, flight: _Flight[V], key: Hashable, label: str) -> CacheEntry[V]:
        if flight.entry is not None:
            return flight.entry
        if flight.error is not None:
            raise flight.error
        backend, path = key if isinstance(key, tuple) and len(key) == 2 else ("", str(key))
        raise BackendUnavailableError(
            f"no answer from the {backend or 'secret'} backend for {label or path} within "
            f"{self.read_timeout_seconds:g} s (SECRET_READ_TIMEOUT); the backend is slow or hung: "
            "check it, or raise SECRET_READ_TIMEOUT",
            backend=str(backend),
            path=str(path),
        )

    def _load_bounded(
        self,
        key: Hashable,
        loader: Callable[[], V],
        flight: _Flight[V],
        generation: int,
        previous: CacheEntry[V] | None,
        label: str,
    ) -> None:
        """Load within the read deadline: in a daemon thread when there is one."""
        if self.read_timeout_seconds is None:
            self._load(key, loader, flight, generation, previous, label)
            return
        threading.Thread(
            target=self._load,
            args=(key, loader, flight, generation, previous, label),
            name=f"yosai-secrets-read-{label or 'key'}",
            daemon=True,
        ).start()
        flight.done.wait(self.read_timeout_seconds)

    def _load(
        self,
        key: Hashable,
        loader: Callable[[], V],
        flight: _Flight[V],
        generation: int,
        previous: CacheEntry[V] | None,
        label: str,
    ) -> None:
        self.backend_calls += 1
        try:
            value = loader()
        except BaseException as exc:
            self.errors += 1
            self._failed(key, flight, previous, label, exc)
            return
        entry = self._new_entry(value, key)
        with self._lock:
            if self._generation == generation:
                self._store(key, entry)
            self._drop_flight(key, flight)
        flight.entry = entry
        flight.done.set()

    def _drop_flight(self, key: Hashable, flight: _Flight[V]) -> None:
        # Called with the lock held. Only this flight: after an invalidate(), a newer one may
        # stand under the same key.
        if self._flights.get(key) is flight:
            del self._flights[key]

    def _new_entry(self, value: V, key: Hashable = None) -> CacheEntry[V]:
        now = self.clock()
        fresh_for = shortened(self.ttl_seconds, self.jitter, self._rng)
        if self._settle_all_until > now or (self._settling and self._settling.pop(key, 0.0) > now):
            fresh_for = min(fresh_for, SETTLE_SECONDS)
        return CacheEntry(
            value=value,
            fetched_at=now,
            expires_at=now + fresh_for,
            stale_until=now + self.ttl_seconds + self.max_stale_seconds,
        )

    def _store(self, key: Hashable, entry: CacheEntry[V]) -> None:
        # Called with the lock held. Re-inserting moves the key to the end: eviction order is
        # the order of fetching.
        self._entries.pop(key, None)
        self._entries[key] = entry
        while len(self._entries) > self.max_entries:
            oldest = next(iter(self._entries))
            self._entries.pop(oldest).expires_at = _NEVER
            self.evictions += 1

    def _failed(
        self,
        key: Hashable,
        flight: _Flight[V],
        previous: CacheEntry[V] | None,
        label: str,
        exc: BaseException,
    ) -> None:
        now = self.clock()
        with self._lock:
            if previous is not None and now < previous.stale_until:
                if not previous.failing:
                    import logging  # only on this rare path: start-up need not load logging

                    logging.getLogger("yosai_secrets.cache").warning(
                        "serving the cached value of %s (fetched %.0f s ago) because its backend "
                        "failed: %s; it will be served for at most %.0f s more unless the backend "
                        "recovers",
                        label or "a secret",
                        now - previous.fetched_at,
                        exc,
                        previous.stale_until - now,
                    )
                previous.failing = True
                interval = min(self.retry_interval_seconds, self.ttl_seconds or 1.0)
                # Stretched, never shortened: the interval is what protects a failing store.
                previous.retry_at = now + interval * (1.0 + self.jitter * self._rng())
            elif previous is not None:
                # Past max_stale nothing is served, but the store is still paced: until retry_at
                # a read gets this error at once instead of starting another backend call.
                previous.failing = True
                previous.error = exc
                interval = min(self.retry_interval_seconds, self.ttl_seconds or 1.0)
                previous.retry_at = now + interval * (1.0 + self.jitter * self._rng())
            self._drop_flight(key, flight)
        flight.error = exc
        flight.done.set()
