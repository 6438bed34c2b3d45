"""No stampede: jittered expiries and retries, drawn per process, configured by SECRET_CACHE_JITTER.

All timing goes through the injected FakeClock: no sleeps.
"""

from __future__ import annotations

import os
import statistics

import pytest

from yosai_secrets import ConfigurationError, SecretManager
from yosai_secrets.cache import SecretCache
from yosai_secrets.jitter import (
    DEFAULT_JITTER,
    full_jitter,
    jitter_from_environ,
    shortened,
    urandom_fraction,
)
from yosai_secrets.testing import FakeClock, MemoryBackend

TTL = 300.0


def expiries(cache: SecretCache[str], clock: FakeClock, count: int) -> list[float]:
    """The expiry offsets (from the fetch) of ``count`` keys cached at one instant."""
    return [cache.get(i, lambda: "v").expires_at - clock() for i in range(count)]


def test_expiries_spread_over_the_last_fraction_of_the_ttl() -> None:
    """With jitter 0.1, 500 keys fetched at one instant expire across [270, 300] s, spread out."""
    clock = FakeClock()
    cache: SecretCache[str] = SecretCache(ttl_seconds=TTL, clock=clock, jitter=0.1)
    offsets = expiries(cache, clock, 500)
    assert all(TTL * 0.9 <= offset <= TTL for offset in offsets)
    # Spread over the whole window: each tenth of it holds some, none holds most.
    tenths = [0] * 10
    for offset in offsets:
        tenths[min(int((offset - TTL * 0.9) / (TTL * 0.01)), 9)] += 1
    assert min(tenths) >= 20 and max(tenths) <= 90, tenths
    assert statistics.pstdev(offsets) > 5.0


def test_zero_disables_jitter() -> None:
    """Jitter 0: every entry expires exactly one TTL after its fetch."""
    clock = FakeClock()
    cache: SecretCache[str] = SecretCache(ttl_seconds=TTL, clock=clock, jitter=0.0)
    assert set(expiries(cache, clock, 50)) == {TTL}


def test_expiry_never_exceeds_the_ttl_at_the_extremes() -> None:
    """Draws of 0 and of just under 1 give the two ends of the window, nothing outside it."""
    assert shortened(TTL, 0.2, lambda: 0.0) == TTL
    assert shortened(TTL, 0.2, lambda: 0.999999) == pytest.approx(TTL * 0.8, abs=1e-3)
    assert shortened(0.0, 0.2, lambda: 0.5) == 0.0  # caching off stays off
    assert full_jitter(2.0, lambda: 0.25) == 0.5
    assert full_jitter(0.0) == 0.0
    assert all(0.0 <= urandom_fraction() < 1.0 for _ in range(1000))


def test_a_failing_entry_is_retried_no_sooner_than_the_interval() -> None:
    """Jittered retries after a store outage are stretched within [5 s, 5.5 s], never shortened."""
    clock = FakeClock()
    draws = iter([0.0, 0.999])  # the expiry's draw, then the retry's
    cache: SecretCache[str] = SecretCache(
        ttl_seconds=10, clock=clock, jitter=0.1, retry_interval_seconds=5, rng=lambda: next(draws)
    )
    calls = []

    def failing() -> str:
        calls.append(clock())
        raise ConfigurationError("store down")

    cache.get("k", lambda: "v")
    clock.advance(10)
    assert cache.get("k", failing).value == "v"  # stale, retry scheduled
    entry = cache.peek("k")
    assert entry is not None
    assert entry.retry_at - clock() == pytest.approx(5 * 1.0999, rel=1e-6)
    clock.advance(5.4)
    cache.get("k", failing)
    assert len(calls) == 1  # not yet: the stretched interval has not passed


def test_cache_refuses_a_jitter_outside_zero_to_one() -> None:
    """A jitter of 1.5 is refused at construction, with the value in the message."""
    with pytest.raises(ConfigurationError, match=r"jitter must be in \[0, 1\], got 1.5"):
        SecretCache(jitter=1.5)


def test_after_fork_the_childs_draws_differ_from_the_parents() -> None:
    """A forked child draws its own expiries: none of 20 equals the parent's (no shared seed)."""
    clock = FakeClock()
    cache: SecretCache[str] = SecretCache(ttl_seconds=TTL, clock=clock, jitter=0.1)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its 20 draws to the parent, then leave at once
        code = 1
        try:
            os.close(read_fd)
            mine = expiries(cache, clock, 20)
            os.write(write_fd, repr(mine).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    parent = expiries(cache, clock, 20)
    with os.fdopen(read_fd, "rb") as pipe:
        child = [float(x) for x in pipe.read().decode().strip("[]").split(",")]
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(child) == 20
    assert not set(child) & set(parent)


def test_secret_cache_jitter_from_the_environment() -> None:
    """SECRET_CACHE_JITTER: unset is 0.1, 0 is off, 0.25 is read; junk and 2 are named errors."""
    assert jitter_from_environ({}) == DEFAULT_JITTER == 0.1
    assert jitter_from_environ({"SECRET_CACHE_JITTER": "0"}) == 0.0
    assert jitter_from_environ({"SECRET_CACHE_JITTER": " 0.25 "}) == 0.25
    for bad in ("lots", "2", "-0.1", "0.1s"):
        with pytest.raises(ConfigurationError, match=r"SECRET_CACHE_JITTER=.*between 0 and 1"):
            jitter_from_environ({"SECRET_CACHE_JITTER": bad})


def test_vault_retry_rounds_wait_a_full_jitter_of_the_backoff() -> None:
    """Against a dead port, the waits between rounds are uniform in [0, cap]: here half of each."""
    from tests.servers.process import free_port
    from yosai_secrets.backends.vault import endpoints_for
    from yosai_secrets.backends.vault_http import VaultTransport
    from yosai_secrets.backends.vault_settings import VaultSettings
    from yosai_secrets.errors import BackendUnavailableError

    settings = VaultSettings(addresses=(f"http://127.0.0.1:{free_port()}",))
    waits: list[float] = []
    transport = VaultTransport(
        endpoints_for(settings, FakeClock()),
        max_retries=3,
        sleep=waits.append,
        rng=lambda: 0.5,
    )
    with pytest.raises(BackendUnavailableError):
        transport.send("GET", "secret/data/x", None, None)
    assert waits == pytest.approx([0.05, 0.1, 0.2])  # caps 0.1, 0.2, 0.4 s, each halved


def test_manager_reads_secret_cache_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """SecretManager: 0.1 by default, SECRET_CACHE_JITTER=0 turns it off, a bad value is named."""
    backend = MemoryBackend({"K": "jitter-value"})
    assert SecretManager(backend).ttl_seconds == 300
    assert SecretManager(backend)._cache.jitter == DEFAULT_JITTER
    monkeypatch.setenv("SECRET_CACHE_JITTER", "0")
    clock = FakeClock()
    manager = SecretManager(backend, clock=clock, ttl_seconds=TTL)
    manager.get("K")
    clock.advance(TTL - 0.001)
    manager.get("K")
    assert backend.calls == 1  # no jitter: fresh until the very end of the TTL
    assert SecretManager(backend, jitter=0.5)._cache.jitter == 0.5  # the argument wins
    monkeypatch.setenv("SECRET_CACHE_JITTER", "ten percent")
    with pytest.raises(ConfigurationError, match="SECRET_CACHE_JITTER='ten percent'"):
        SecretManager(backend)


def test_a_fleet_of_managers_started_together_refreshes_apart() -> None:
    """256 managers reading at one instant refresh over 30 s of a 300 s TTL, not in one second."""
    clock = FakeClock()
    backend = MemoryBackend({"K": "fleet-value"})
    managers = [SecretManager(backend, clock=clock, ttl_seconds=TTL) for _ in range(256)]
    for manager in managers:
        manager.get("K")
    refreshed_per_second = []
    clock.advance(TTL * 0.9 - 1)
    for _ in range(32):
        clock.advance(1)
        before = backend.calls
        for manager in managers:
            manager.get("K")
        refreshed_per_second.append(backend.calls - before)
    assert sum(refreshed_per_second) == 256  # each refreshed exactly once in the window
    assert max(refreshed_per_second) <= 30  # ~8.5 a second on average, never the whole fleet
