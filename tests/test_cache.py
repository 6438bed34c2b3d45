"""The cache: TTL, single-flight, stale-if-error, invalidation, bounds, statistics."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from yosai_secrets import BackendUnavailableError, ConfigurationError, SecretManager
from yosai_secrets.backends.base import Fetched
from yosai_secrets.cache import SecretCache
from yosai_secrets.testing import FakeClock, MemoryBackend

# How long a test waits for something another thread does in microseconds: a hang guard only.
HANG_GUARD_SECONDS = 30.0


class GatedBackend(MemoryBackend):
    """A MemoryBackend whose fetch says it has started, then waits until the test releases it."""

    def __init__(self, data: dict[str, object] | None = None) -> None:
        super().__init__(data)
        self.entered = threading.Event()
        self.release = threading.Event()

    def fetch(self, path: str) -> Fetched:
        """Signal ``entered``, wait for ``release``, then read as MemoryBackend does."""
        self.entered.set()
        if not self.release.wait(HANG_GUARD_SECONDS):
            raise AssertionError("the test never released the backend call")
        return super().fetch(path)


def release_when_all_wait(manager: SecretManager, backend: GatedBackend, readers: int) -> None:
    """Release the backend call once every reader has joined it (counted as a cache miss)."""
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while manager.stats().misses < readers and time.monotonic() < deadline:
        time.sleep(0.001)
    backend.release.set()


def make(
    data: dict[str, object] | None = None, **kwargs: float
) -> tuple[SecretManager, MemoryBackend, FakeClock]:
    backend = MemoryBackend(data or {"DB_PASSWORD": "first-value"})
    clock = FakeClock()
    kwargs.setdefault("jitter", 0)  # exact expiries; tests/test_jitter.py covers the spread
    manager = SecretManager(backend, clock=clock, **kwargs)  # type: ignore[arg-type]
    return manager, backend, clock


def test_hit_within_ttl_makes_no_call() -> None:
    """Within the TTL, a value is served from memory."""
    manager, backend, clock = make(ttl_seconds=300)
    assert manager.get("DB_PASSWORD") == "first-value"
    clock.advance(299)
    assert manager.get("DB_PASSWORD") == "first-value"
    assert backend.calls == 1
    stats = manager.stats()
    assert (stats.hits, stats.misses, stats.backend_calls) == (1, 1, 1)


def test_expired_value_is_refetched() -> None:
    """Past the TTL the value is read again, and a changed value is seen."""
    manager, backend, clock = make(ttl_seconds=10)
    manager.get("DB_PASSWORD")
    backend.data["DB_PASSWORD"] = "second-value"
    clock.advance(11)
    assert manager.get("DB_PASSWORD") == "second-value"
    assert backend.calls == 2


def test_ttl_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """SECRET_CACHE_TTL sets the default TTL; a non-number is a clear error."""
    monkeypatch.setenv("SECRET_CACHE_TTL", "42")
    assert SecretManager(MemoryBackend()).ttl_seconds == 42
    monkeypatch.setenv("SECRET_CACHE_TTL", "soon")
    with pytest.raises(ConfigurationError, match="SECRET_CACHE_TTL"):
        SecretManager(MemoryBackend())


def test_default_ttl_is_300_seconds() -> None:
    """With nothing configured, values are fresh for 300 s."""
    assert SecretManager(MemoryBackend()).ttl_seconds == 300


def test_single_flight_64_threads_one_call() -> None:
    """64 threads asking for one cold key cause exactly one backend call."""
    backend = GatedBackend({"K": "v" * 8})
    manager = SecretManager(backend)
    barrier = threading.Barrier(64)
    results: list[str] = []

    def read() -> None:
        barrier.wait()
        results.append(manager.get("K"))

    threads = [threading.Thread(target=read) for _ in range(64)]
    for t in threads:
        t.start()
    release_when_all_wait(manager, backend, 64)
    for t in threads:
        t.join()
    assert results == ["v" * 8] * 64
    assert backend.calls == 1
    assert manager.stats().backend_calls == 1


def test_single_flight_shares_errors() -> None:
    """Waiters of a failed cold read all get the error, from one call."""
    backend = GatedBackend()
    backend.failing = True
    manager = SecretManager(backend)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            manager.get("K")
        except BackendUnavailableError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    release_when_all_wait(manager, backend, 8)
    for t in threads:
        t.join()
    assert len(errors) == 8
    assert backend.calls == 1


def test_stale_if_error_then_raise(caplog: pytest.LogCaptureFixture) -> None:
    """A failing backend is covered by the cached value for max_stale_seconds, with one warning."""
    manager, backend, clock = make(ttl_seconds=10, max_stale_seconds=100)
    assert manager.get("DB_PASSWORD") == "first-value"
    backend.failing = True
    clock.advance(11)
    with caplog.at_level(logging.WARNING, logger="yosai_secrets.cache"):
        assert manager.get("DB_PASSWORD") == "first-value"
        clock.advance(30)
        assert manager.get("DB_PASSWORD") == "first-value"
        clock.advance(30)
        assert manager.get("DB_PASSWORD") == "first-value"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "DB_PASSWORD" in warnings[0].getMessage()
    assert "first-value" not in warnings[0].getMessage()
    assert manager.stats().stale_serves == 3
    assert manager.is_stale("DB_PASSWORD")
    clock.advance(50)  # now 121 s after the fetch: past ttl + max_stale
    with pytest.raises(BackendUnavailableError):
        manager.get("DB_PASSWORD")


def test_recovery_clears_stale_state() -> None:
    """Once the backend answers again the fresh value is served and the warning re-arms."""
    manager, backend, clock = make(ttl_seconds=10, max_stale_seconds=100)
    manager.get("DB_PASSWORD")
    backend.failing = True
    clock.advance(11)
    manager.get("DB_PASSWORD")
    backend.failing = False
    backend.data["DB_PASSWORD"] = "recovered"
    clock.advance(10)  # past the retry interval
    assert manager.get("DB_PASSWORD") == "recovered"
    assert not manager.is_stale("DB_PASSWORD")


def test_failing_backend_not_hammered() -> None:
    """While stale-serving, a failing backend is retried at most every retry interval."""
    manager, backend, clock = make(ttl_seconds=10, max_stale_seconds=1000)
    manager.get("DB_PASSWORD")
    backend.failing = True
    clock.advance(11)
    for _ in range(50):
        manager.get("DB_PASSWORD")
    assert backend.calls == 2


def test_expired_read_does_not_wait_for_slow_backend() -> None:
    """Past the TTL, a slow refresh does not block readers: they get the previous value."""
    backend = GatedBackend({"K": "old-value"})
    backend.release.set()
    clock = FakeClock()
    manager = SecretManager(backend, clock=clock, ttl_seconds=10)
    manager.get("K")
    backend.release.clear()  # the refresh now hangs until released below
    backend.data["K"] = "new-value"
    clock.advance(11)
    # A reader that waited for the refresh would still be waiting (and then see the new value).
    assert manager.get("K") == "old-value"
    assert manager.get("K") == "old-value"
    assert backend.entered.wait(HANG_GUARD_SECONDS)  # the refresh did start
    backend.release.set()
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while manager.get("K") != "new-value" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert manager.get("K") == "new-value"
    assert backend.calls == 2


def test_invalidate_one_and_all() -> None:
    """invalidate(key) forgets that path; invalidate() forgets everything."""
    manager, backend, _ = make({"A": "value-a", "B": "value-b"})
    manager.get("A")
    manager.get("B")
    assert manager.invalidate("A") == 1
    manager.get("A")
    manager.get("B")
    assert backend.calls == 3
    assert manager.invalidate() == 2
    manager.get("A")
    manager.get("B")
    assert backend.calls == 5


def test_invalidate_forgets_every_field_of_a_path() -> None:
    """Fields of one path share one read, and one invalidation forgets them all."""
    manager, backend, _ = make({"db": {"user": "app-user", "password": "app-pass"}})
    assert manager.get("db#user") == "app-user"
    assert manager.get("db#password") == "app-pass"
    assert backend.calls == 1
    manager.invalidate("db#password")
    assert manager.get("db#user") == "app-user"
    assert backend.calls == 2


def test_value_fetched_before_invalidation_is_not_cached() -> None:
    """The cache does not store a value whose read began before invalidate()."""
    cache: SecretCache[str] = SecretCache()
    entered, release = threading.Event(), threading.Event()
    source = {"K": "before"}

    def held_read() -> str:
        value = source["K"]
        entered.set()
        assert release.wait(HANG_GUARD_SECONDS)
        return value

    reader = threading.Thread(target=cache.get, args=("K", held_read))
    reader.start()
    assert entered.wait(HANG_GUARD_SECONDS)  # the read has its value, and is held there
    cache.invalidate()
    source["K"] = "after"
    release.set()
    reader.join()
    assert cache.peek("K") is None
    assert cache.get("K", lambda: source["K"]).value == "after"


def test_value_fetched_before_invalidation_is_not_served_again() -> None:
    """After invalidate(), a read that began before it does not make get() serve its value."""
    backend = GatedBackend({"K": "before"})
    manager = SecretManager(backend)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(manager.get("K")))
    reader.start()
    assert backend.entered.wait(HANG_GUARD_SECONDS)  # the read has begun, and is held there
    manager.invalidate("K")
    backend.release.set()
    reader.join()
    assert got == ["before"]
    backend.data["K"] = "after"
    assert manager.get("K") == "after"


def test_bounded_size_evicts_oldest() -> None:
    """The cache holds at most max_entries paths."""
    backend = MemoryBackend({f"K{i}": f"value-{i}" for i in range(10)})
    manager = SecretManager(backend, max_entries=3)
    for i in range(10):
        manager.get(f"K{i}")
    stats = manager.stats()
    assert stats.size == 3
    assert stats.evictions == 7
    manager.get("K9")
    assert backend.calls == 10
    manager.get("K0")
    assert backend.calls == 11


def test_cache_rejects_bad_settings() -> None:
    """Negative TTLs and empty bounds are refused at construction."""
    with pytest.raises(ConfigurationError, match="ttl_seconds"):
        SecretCache(ttl_seconds=-1)
    with pytest.raises(ConfigurationError, match="max_entries"):
        SecretCache(max_entries=0)


def test_many_threads_mixed_keys_are_consistent() -> None:
    """Concurrent reads of many keys, with invalidations, always return correct values."""
    backend = MemoryBackend({f"K{i}": f"value-{i}" for i in range(20)})
    manager = SecretManager(backend, ttl_seconds=0.01)
    failures: list[str] = []

    def work(offset: int) -> None:
        for n in range(300):
            i = (n + offset) % 20
            if manager.get(f"K{i}") != f"value-{i}":
                failures.append(f"K{i}")
            if n % 50 == 0:
                manager.invalidate(f"K{i}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_ttl_zero_reads_every_time_in_the_callers_thread() -> None:
    """With ttl_seconds=0 every get reads the backend and sees a change at once."""
    manager, backend, _ = make({"K": "one-value"}, ttl_seconds=0)
    assert manager.get("K") == "one-value"
    backend.data["K"] = "two-value"
    assert manager.get("K") == "two-value"
    assert backend.calls == 2
    assert threading.active_count() == 1 or all(
        not t.name.startswith("yosai-secrets-refresh") for t in threading.enumerate()
    )


def test_first_read_after_invalidate_is_kept_briefly_then_read_again() -> None:
    """A replica may still serve the old value just after a change: it cannot stick for a TTL."""
    from yosai_secrets.cache import SETTLE_SECONDS

    manager, backend, clock = make(ttl_seconds=300)
    assert manager.get("DB_PASSWORD") == "first-value"
    manager.invalidate("DB_PASSWORD")
    manager.get("DB_PASSWORD")
    assert backend.calls == 2
    clock.advance(SETTLE_SECONDS + 0.01)
    manager.get("DB_PASSWORD")  # read once more: a fresh TTL from now on
    assert backend.calls == 3
    clock.advance(SETTLE_SECONDS + 0.01)
    manager.get("DB_PASSWORD")
    assert backend.calls == 3
