"""The JWKS cache under a failing, slow or dripping key server, and under forged key ids.

The key server is the stand-in Auth0 tenant of :mod:`tests.auth0_helpers` (Auth0 itself cannot be
reached from a test): a threaded HTTP server on 127.0.0.1 that counts its requests and can be made
to fail (500), to answer late, or to drip its answer one byte at a time.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.auth0_helpers import Tenant, api_trusting, new_tenant
from yosai_secrets.api.auth import VERIFIER_KEY, Auth0Verifier, AuthFailure, JwksCache
from yosai_secrets.api.fetch import FetchGate, Unavailable, get_json
from yosai_secrets.testing import FakeClock

LIST = "/api/secrets"


@pytest.fixture
def tenant() -> Iterator[Tenant]:
    """A fresh stand-in tenant per test: its request count starts at zero."""
    made = new_tenant()
    yield made
    made.server.close()


@pytest.fixture
def app(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Flask:
    """The API trusting the stand-in tenant (default back-off: 30 to 60 s)."""
    return api_trusting(tenant, monkeypatch, tmp_path)


def _get(app: Flask, token: str) -> Any:
    return app.test_client().get(LIST, headers={"Authorization": f"Bearer {token}"})


def _cache(tenant: Tenant, clock: FakeClock, **options: Any) -> JwksCache:
    return JwksCache(tenant.server.url, clock=clock, jitter=lambda: 0.0, **options)


def _in_threads(count: int, work: Any) -> tuple[list[Any], list[float]]:
    """Run ``work()`` in ``count`` threads started together; return results and durations."""
    results: list[Any] = [None] * count
    durations = [0.0] * count
    start = threading.Barrier(count)

    def one(index: int) -> None:
        start.wait()
        began = time.monotonic()
        results[index] = work()
        durations[index] = time.monotonic() - began

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results, durations


def test_a_failed_fetch_is_not_retried_by_every_request(app: Flask, tenant: Tenant) -> None:
    """10 requests after a failed fetch cost 1 fetch, and each is refused at once (bare 401)."""
    tenant.server.failing = True
    began = time.monotonic()
    responses = [_get(app, tenant.token()) for _ in range(10)]
    elapsed = time.monotonic() - began
    assert [r.status_code for r in responses] == [401] * 10
    assert all(r.get_json() == {"error": "unauthorized"} for r in responses)
    print(f"10 requests after a failed JWKS fetch: {tenant.server.requests} fetch, {elapsed:.3f} s")
    assert tenant.server.requests == 1
    assert elapsed < 2.0, elapsed
    tenant.server.failing = False  # back up, but the back-off has not passed: still no fetch
    assert _get(app, tenant.token()).status_code == 401
    assert tenant.server.requests == 1


def test_refusal_while_unavailable_shows_nothing(app: Flask, tenant: Tenant) -> None:
    """While the JWKS is unavailable the answer is the bare 401: no address, reason or trace."""
    tenant.server.failing = True
    token = tenant.token()
    for _ in range(2):
        response = _get(app, token)
        body = response.get_data(as_text=True)
        assert response.status_code == 401
        assert response.get_json() == {"error": "unauthorized"}
        for leak in (token, tenant.server.base, "Traceback", "JWKS", "500"):
            assert leak not in body


def test_concurrent_requests_share_one_slow_fetch(app: Flask, tenant: Tenant) -> None:
    """3 requests behind a 2 s fetch finish together in about 2 s (not 2, 4, 6 s), 1 fetch."""
    tenant.server.delay_seconds = 2.0
    token = tenant.token()
    results, durations = _in_threads(3, lambda: _get(app, token).status_code)
    print(f"3 concurrent requests behind a 2 s JWKS fetch: {[round(d, 2) for d in durations]} s")
    assert results == [200, 200, 200]
    assert tenant.server.requests == 1
    assert max(durations) < 3.0, durations


def test_forged_key_ids_cannot_force_fetches(app: Flask, tenant: Tenant) -> None:
    """50 requests with random unknown key ids (25 at once, 25 in a row) make 1 fetch."""
    forged = [tenant.token(kid=uuid.uuid4().hex) for _ in range(50)]
    at_once, _ = _in_threads(25, lambda: _get(app, forged.pop()).status_code)
    in_a_row = [_get(app, token).status_code for token in list(forged)]
    assert at_once + in_a_row == [401] * 50
    print(f"50 requests with random unknown key ids: {tenant.server.requests} JWKS fetch(es)")
    assert tenant.server.requests <= 2
    assert _get(app, tenant.token()).status_code == 200
    assert tenant.server.requests <= 2


def test_unknown_key_id_refetches_at_most_once_per_interval(tenant: Tenant) -> None:
    """An unknown key id refetches (keys rotate), at most once per min_refetch_seconds."""
    clock = FakeClock()
    cache = _cache(tenant, clock, min_refetch_seconds=30)
    assert cache.key_for(tenant.kid) is not None
    for n in range(20):
        with pytest.raises(AuthFailure):
            cache.key_for(f"rotated-{n}")
    assert tenant.server.requests == 1
    clock.advance(31)
    with pytest.raises(AuthFailure):
        cache.key_for("rotated-again")
    assert tenant.server.requests == 2


def test_back_off_is_jittered_and_ends(tenant: Tenant) -> None:
    """A failure holds fetches off for backoff_seconds to twice that; then one fetch recovers."""
    clock = FakeClock()
    cache = JwksCache(tenant.server.url, clock=clock, backoff_seconds=30, jitter=lambda: 0.9)
    tenant.server.failing = True
    with pytest.raises(AuthFailure):
        cache.key_for(tenant.kid)
    tenant.server.failing = False
    clock.advance(56)  # 30 s * (1 + 0.9) = 57 s
    with pytest.raises(AuthFailure):
        cache.key_for(tenant.kid)
    assert tenant.server.requests == 1
    clock.advance(2)
    assert cache.key_for(tenant.kid) is not None
    assert tenant.server.requests == 2


def test_default_back_off_lies_between_30_and_60_seconds(tenant: Tenant) -> None:
    """With the default jitter, the back-off after a failure is within [30, 60) seconds."""
    tenant.server.failing = True
    for _ in range(5):
        clock = FakeClock()
        cache = JwksCache(tenant.server.url, clock=clock)
        with pytest.raises(AuthFailure):
            cache.key_for(tenant.kid)
        fetched = tenant.server.requests
        clock.advance(29.9)
        with pytest.raises(AuthFailure):
            cache.key_for(tenant.kid)
        clock.advance(30.1)
        with pytest.raises(AuthFailure):
            cache.key_for(tenant.kid)
        assert tenant.server.requests == fetched + 1


def test_known_keys_are_kept_while_the_jwks_is_down(tenant: Tenant) -> None:
    """Past its TTL, a known key keeps working without waiting while Auth0 is down."""
    clock = FakeClock()
    cache = _cache(tenant, clock, ttl_seconds=600)
    key = cache.key_for(tenant.kid)
    tenant.server.failing = True
    tenant.server.delay_seconds = 1.0
    clock.advance(601)
    began = time.monotonic()
    for _ in range(10):
        assert cache.key_for(tenant.kid) is key
    assert time.monotonic() - began < 0.5
    assert cache.fetches == 2  # one background refetch for the ten calls


def test_a_slow_fetch_is_cut_at_its_deadline_then_backed_off(tenant: Tenant) -> None:
    """A fetch slower than its deadline fails then; the next caller is refused at once."""
    clock = FakeClock()
    cache = _cache(tenant, clock, deadline_seconds=1.0)
    tenant.server.delay_seconds = 3.0
    began = time.monotonic()
    with pytest.raises(AuthFailure, match="did not answer within 1 s"):
        cache.key_for(tenant.kid)
    assert time.monotonic() - began < 1.6
    began = time.monotonic()
    with pytest.raises(AuthFailure, match="failed recently"):
        cache.key_for(tenant.kid)
    assert time.monotonic() - began < 0.1
    assert tenant.server.requests == 1


def test_a_dripping_server_cannot_hold_a_fetch_past_its_deadline(tenant: Tenant) -> None:
    """Headers at once, then one byte every 0.2 s: the read ends at the deadline, not per byte."""
    tenant.server.drip_seconds = 0.2
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        get_json(tenant.server.url, deadline_seconds=1.0)
    elapsed = time.monotonic() - began
    print(f"body dripped every 0.2 s, 1 s deadline: gave up after {elapsed:.2f} s")
    assert elapsed < 1.5


def test_a_server_dripping_its_headers_is_cut_at_the_deadline() -> None:
    """A status line, then a header one byte every 0.2 s: the fetch still ends at the deadline."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\n")
            with contextlib.suppress(OSError):
                while not stop.wait(0.2):
                    connection.sendall(b"X")

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/.well-known/jwks.json"
    began = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            get_json(url, deadline_seconds=1.0)
        elapsed = time.monotonic() - began
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    print(f"headers dripped every 0.2 s, 1 s deadline: gave up after {elapsed:.2f} s")
    assert elapsed < 1.5


def test_a_fetch_that_never_returns_costs_waiters_only_the_deadline() -> None:
    """A fetch function that hangs: every waiter is released at the deadline, then backed off."""
    release = threading.Event()
    gate = FetchGate(
        lambda: (release.wait(10), None)[1], name="the hung thing", deadline_seconds=0.5
    )
    try:
        results, durations = _in_threads(4, lambda: _outcome(gate))
        assert results == ["unavailable"] * 4
        assert max(durations) < 1.0, durations
        assert gate.fetches == 1
        assert gate.backing_off()
    finally:
        release.set()


def _outcome(gate: FetchGate) -> str:
    try:
        gate.run()
    except Unavailable:
        return "unavailable"
    return "ok"


def test_clearing_caches_ends_the_back_off(app: Flask, tenant: Tenant) -> None:
    """SIGHUP/invalidate clear the JWKS cache and its back-off: the next token fetches at once."""
    tenant.server.failing = True
    assert _get(app, tenant.token()).status_code == 401
    tenant.server.failing = False
    app.extensions["yosai_secrets"].clear_caches()
    assert _get(app, tenant.token()).status_code == 200
    assert tenant.server.requests == 2
    assert isinstance(app.extensions[VERIFIER_KEY], Auth0Verifier)
