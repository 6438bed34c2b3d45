"""Prometheus metrics: counted off the hit path, read at scrape time, exported by ``/metrics``
(alone, and from two gunicorn workers in multiprocess mode), with key names and never values."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.metrics_support import (
    DAY,
    aged_secret_file,
    gunicorn_environ,
    metrics_app,
    samples,
    start_gunicorn,
    value,
)
from tests.servers.openbao import OpenBaoServer
from tests.servers.process import free_port, stop_process
from yosai_secrets import metrics
from yosai_secrets.api.metrics import rotation_journal
from yosai_secrets.manager import SecretManager
from yosai_secrets.metrics_export import PostureGauges, render

NAMES = (
    "yosai_secrets_cache_hits_total",
    "yosai_secrets_cache_misses_total",
    "yosai_secrets_backend_requests_total",
    "yosai_secrets_backend_request_duration_seconds_bucket",
    "yosai_secrets_backend_request_duration_seconds_count",
    "yosai_secrets_stale_served_total",
    "yosai_secrets_secret_age_seconds",
    "yosai_secrets_vault_token_ttl_seconds",
    "yosai_secrets_rotation_open",
)

LONG_TOKEN = "metrics-token-" + "x" * 40


def _kv_paths(openbao: OpenBaoServer, count: int, canary: str) -> dict[str, str]:
    """``count`` KV v2 entries holding canary values; reference -> value."""
    made = {}
    for index in range(count):
        path = f"secret/data/m{uuid.uuid4().hex[:10]}"
        held = f"{canary}-{index}"
        status, _ = openbao.api("PUT", path, {"data": {"v": held}})
        assert status in (200, 204)
        made[f"vault:{path}#v"] = held
    return made


def _token_with_ttl(openbao: OpenBaoServer, ttl: str) -> str:
    status, body = openbao.api("POST", "auth/token/create", {"ttl": ttl, "policies": ["root"]})
    assert status == 200, body
    return str(body["auth"]["client_token"])


def test_a_cached_hit_adds_no_count_but_the_hits_are_scraped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hits touch no metrics counter; the scrape reads them from the manager's stats."""
    monkeypatch.setenv("METRICS_HIT_KEY", "value")
    manager = SecretManager(environ=dict(os.environ), audit=False)
    manager.get("METRICS_HIT_KEY")
    counted = dict(metrics.reads().requests)
    hits_before = value(render()[0].decode(), "yosai_secrets_cache_hits_total")
    for _ in range(1000):
        manager.get("METRICS_HIT_KEY")
    assert metrics.reads().requests == counted  # no backend call, no count of one
    hits_after = value(render()[0].decode(), "yosai_secrets_cache_hits_total")
    assert hits_after - hits_before == 1000


def test_backend_calls_are_counted_by_outcome_and_timed(
    openbao: OpenBaoServer, canary: str
) -> None:
    """A read, a missing path and a refused token count as ok, not_found and error, timed."""
    keys = _kv_paths(openbao, 1, canary)
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.token}
    before = render()[0].decode()
    good = SecretManager(environ=environ, read_timeout_seconds=5)
    assert good.get(next(iter(keys))) == next(iter(keys.values()))
    assert good.get("vault:secret/data/metrics-nowhere#v", default="") == ""
    refused = SecretManager(environ={**environ, "VAULT_TOKEN": "not-a-token"})
    with pytest.raises(Exception):  # noqa: B017 (the type is the backend's business here)
        refused.get(next(iter(keys)))
    after = render()[0].decode()
    for outcome in ("ok", "not_found", "error"):
        labels = {"backend": "vault", "outcome": outcome}
        was = samples(before).get(("yosai_secrets_backend_requests_total", _sorted(labels)), 0)
        assert value(after, "yosai_secrets_backend_requests_total", **labels) - was >= 1
    count = value(after, "yosai_secrets_backend_request_duration_seconds_count", backend="vault")
    fast = value(
        after, "yosai_secrets_backend_request_duration_seconds_bucket", backend="vault", le="1.0"
    )
    assert count >= 3 and fast <= count
    assert value(after, "yosai_secrets_backend_request_duration_seconds_sum", backend="vault") > 0
    assert canary not in after


def _sorted(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def test_metrics_requires_the_bearer_token_when_one_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With METRICS_TOKEN: no token or a wrong one gets 401, the right one the text."""
    monkeypatch.setenv("METRICS_TOKEN", LONG_TOKEN)
    client = metrics_app(monkeypatch, tmp_path).test_client()
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer " + "y" * 54})
    assert wrong.status_code == 401 and LONG_TOKEN not in wrong.get_data(as_text=True)
    right = client.get("/metrics", headers={"Authorization": f"Bearer {LONG_TOKEN}"})
    assert right.status_code == 200
    assert "yosai_secrets_cache_hits_total" in right.get_data(as_text=True)
    assert LONG_TOKEN not in right.get_data(as_text=True)


def test_metrics_is_open_without_a_token_and_shows_key_names_never_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, canary: str
) -> None:
    """No METRICS_TOKEN: open; a secret's age is labelled with its key, its value is nowhere."""
    monkeypatch.setenv(
        "DB_PASSWORD_FILE", str(aged_secret_file(tmp_path, "db", f"{canary}-db", age_days=3))
    )
    client = metrics_app(monkeypatch, tmp_path).test_client()
    assert client.get("/readyz").status_code == 200
    scraped = client.get("/metrics")
    text = scraped.get_data(as_text=True)
    assert scraped.status_code == 200 and scraped.mimetype == "text/plain"
    assert canary not in text
    age = value(text, "yosai_secrets_secret_age_seconds", key="DB_PASSWORD")
    assert 2.9 * DAY < age < 3.1 * DAY


def test_rotation_open_follows_the_journal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """rotation_open is 0 without a journal beside ROTATION_MANIFEST, 1 while one exists."""
    from yosai_secrets.rotation.journal import journal_path
    from yosai_secrets.rotation.plan import DEFAULT_MANIFEST

    assert rotation_journal() == journal_path(DEFAULT_MANIFEST)  # the default, spelled alike
    manifest = tmp_path / "api-secrets.yaml"
    monkeypatch.setenv("ROTATION_MANIFEST", str(manifest))
    assert rotation_journal() == journal_path(manifest)
    client = metrics_app(monkeypatch, tmp_path).test_client()
    assert value(client.get("/metrics").get_data(as_text=True), "yosai_secrets_rotation_open") == 0
    journal_path(manifest).write_text("{}")
    assert value(client.get("/metrics").get_data(as_text=True), "yosai_secrets_rotation_open") == 1


def test_secret_stamps_are_looked_up_once_per_interval() -> None:
    """A scrape reuses the stamps for refresh_seconds (the store is not asked per scrape)."""
    calls: list[int] = []
    now = [0.0]
    stamp = datetime(2026, 1, 1, tzinfo=UTC)

    def stamps() -> dict[str, datetime | None]:
        calls.append(1)
        return {"SECRET_KEY": stamp, "DB_PASSWORD": None}

    gauges = PostureGauges(stamps, refresh_seconds=60, clock=lambda: now[0])
    for second in range(0, 60, 10):
        now[0] = float(second)
        ages = gauges.ages(now=stamp + timedelta(days=2, seconds=second))
        assert ages == {"SECRET_KEY": 2 * DAY + second}  # unknown stamps are left out
    assert len(calls) == 1
    now[0] = 61.0
    gauges.ages()
    assert len(calls) == 2


def test_importing_the_package_or_building_the_app_loads_no_prometheus_client() -> None:
    """prometheus_client is imported by a scrape only, never by the package or create_app."""
    code = (
        "import sys, yosai_secrets, yosai_secrets.metrics, yosai_secrets.manager\n"
        "assert 'prometheus_client' not in sys.modules, 'imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        body = response.read()
    return json.loads(body) if path != "/metrics" else body.decode()


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


@pytest.mark.integration  # gunicorn with two workers, OpenBao
def test_two_gunicorn_workers_export_every_name_with_their_summed_counts(
    openbao: OpenBaoServer, tmp_path: Path, canary: str
) -> None:
    """Both workers' reads add up in /metrics; every name is there with a sensible value."""
    from concurrent.futures import ThreadPoolExecutor

    keys = _kv_paths(openbao, 3, canary)
    old = aged_secret_file(tmp_path, "db_password", f"{canary}-db", age_days=85)
    port = free_port()
    manifest = tmp_path / "api-secrets.yaml"
    environ = gunicorn_environ(
        tmp_path,
        port,
        VAULT_ADDR=openbao.addr,
        VAULT_TOKEN=_token_with_ttl(openbao, "1h"),
        DB_PASSWORD_FILE=str(old),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        ROTATION_MANIFEST=str(manifest),
        METRICS_TEST_KEYS=json.dumps(list(keys)),
    )
    process = start_gunicorn(tmp_path, environ, "gunicorn.log")
    try:
        pids: dict[int, int] = {}
        lock = threading.Lock()

        def read(_: int) -> None:
            answer = _get(port, "/read")
            with lock:
                pids[answer["pid"]] = pids.get(answer["pid"], 0) + answer["reads"]

        # Until each worker has made more than 3 reads per key: then the hits in the scrape
        # exceed what the busier worker alone could have counted (see _check_every_name).
        deadline = time.monotonic() + 40
        with ThreadPoolExecutor(4) as pool:
            while len(pids) < 2 or min(pids.values()) <= 3 * len(keys):
                assert time.monotonic() < deadline, f"workers answering: {pids}"
                list(pool.map(read, range(20)))
        _get(port, "/missing")
        made = sum(pids.values())
        # A worker misses a key once per thread that asks before the first read lands (single
        # flight: one backend call); every other read is a hit.
        slack = 2 * 2 * len(keys)  # workers x threads x keys
        _until(
            lambda: value(_get(port, "/metrics"), "yosai_secrets_cache_hits_total") >= made - slack,
            15,
            "the other worker's hits never reached /metrics",
        )
        text = _get(port, "/metrics")
        _check_every_name(text, made, len(keys), max(pids.values()))
        assert canary not in text
        manifest.with_name(manifest.name + ".journal.json").write_text("{}")
        assert value(_get(port, "/metrics"), "yosai_secrets_rotation_open") == 1
        _a_dead_worker_keeps_its_counts(process, port, text, list(pids))
    finally:
        stop_process(process)
    log = (tmp_path / "gunicorn.log").read_text()
    assert canary not in log and "Traceback" not in log, log


def _check_every_name(text: str, made: int, keys: int, most_by_one: int) -> None:
    found = {name for name, _ in samples(text)}
    assert set(NAMES) <= found, set(NAMES) - found
    hits = value(text, "yosai_secrets_cache_hits_total")
    # Every read but at most 2 misses per key per worker is a hit; the busier worker missed each
    # key at least once, so more hits than its reads less its misses means both are summed.
    assert hits >= made - 4 * keys and hits > most_by_one - keys
    vault_ok = value(text, "yosai_secrets_backend_requests_total", backend="vault", outcome="ok")
    assert vault_ok == 2 * keys  # one miss per key per worker
    assert value(text, "yosai_secrets_cache_misses_total") >= 2 * keys
    assert (
        value(text, "yosai_secrets_backend_requests_total", backend="env", outcome="not_found") >= 1
    )
    count = value(text, "yosai_secrets_backend_request_duration_seconds_count", backend="vault")
    inf = value(
        text, "yosai_secrets_backend_request_duration_seconds_bucket", backend="vault", le="+Inf"
    )
    assert count == inf == 2 * keys
    assert value(text, "yosai_secrets_stale_served_total") == 0
    age = value(text, "yosai_secrets_secret_age_seconds", key="DB_PASSWORD")
    assert 84.9 * DAY < age < 85.1 * DAY
    assert 3000 < value(text, "yosai_secrets_vault_token_ttl_seconds") <= 3600
    assert value(text, "yosai_secrets_rotation_open") == 0


def _a_dead_worker_keeps_its_counts(
    process: subprocess.Popen[bytes], port: int, before: str, pids: list[int]
) -> None:
    """A worker killed and replaced: its counts stay in the totals (child_exit ran, no error)."""
    hits = value(before, "yosai_secrets_cache_hits_total")
    os.kill(pids[0], signal.SIGTERM)
    _until(lambda: _workers(process.pid) - set(pids) != set(), 20, "no replacement worker")
    text = _get(port, "/metrics")
    assert value(text, "yosai_secrets_cache_hits_total") >= hits
    assert 3000 < value(text, "yosai_secrets_vault_token_ttl_seconds") <= 3600


def _workers(master: int) -> set[int]:
    """The pids of the master's children (read from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                found.add(int(entry.name))
    return found
