"""Benchmark: one uncached Vault read by our backend, beside bare hvac and a raw HTTP GET.

Run: ``python bench/vault.py`` (or ``make bench``). It starts its own ``bao server -dev`` on a free
loopback port, writes one KV v2 secret, and measures, interleaved in rounds so that machine noise
hits every contender alike:

- **floor**: a keep-alive ``http.client`` GET of ``/v1/secret/data/bench`` plus ``json.loads``;
- **hvac**: ``client.secrets.kv.v2.read_secret_version`` of the same path (what a user would
  write by hand);
- **ours, backend**: ``VaultBackend.fetch`` (the cache bypassed);
- **ours, manager ttl 0**: ``SecretManager(backend, ttl_seconds=0).get(path#field)``, i.e. the
  whole get path (field selection, redaction registration) with every read going to the server;
- **cached hit**: ``SecretManager.get`` with the default TTL;
- **batch of 10 paths**: ``VaultBackend.fetch_many`` (ten ``fetch`` calls on a small thread
  pool) beside ten ``fetch`` calls one after the other, on loopback and through a relay that adds
  1 ms to every request (a server across a network), since on loopback there is no latency for
  the threads to overlap.

For each: p50 wall latency per read, and our process's CPU time per read (the server's CPU is in
another process). Target: ours at most 1.0x bare hvac at p50. Ratios are printed and written to
bench/RESULTS.md, since absolute figures on a shared machine drift.
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers.openbao import start_openbao, stop_openbao

from delay_proxy import proxy
from results import Report
from yosai_secrets.backends.vault import VaultBackend
from yosai_secrets.backends.vault_settings import VaultSettings
from yosai_secrets.manager import SecretManager

ROUNDS = 10
PER_ROUND = 300
CACHED_LOOPS = 200_000
BATCH_PATHS = 10
BATCH_LOOPS = 300
DELAYED_BATCH_LOOPS = 60
DELAY_SECONDS = 0.001
FLOOR = "floor (http.client keep-alive GET + json)"
HVAC = "hvac read_secret_version"
OURS = "ours: VaultBackend.fetch"
MANAGER = "ours: SecretManager ttl=0 get()"
SEQUENTIAL = "sequential VaultBackend.fetch"
BATCHED = "VaultBackend.fetch_many"


def measure(contenders: dict[str, Callable[[], object]]) -> dict[str, tuple[float, float]]:
    """Return {name: (p50 latency µs, CPU µs per read)}, contenders interleaved by round."""
    latencies: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, float] = dict.fromkeys(contenders, 0.0)
    for fn in contenders.values():
        for _ in range(50):
            fn()  # warm: connections open, code paths hot
    for _ in range(ROUNDS):
        for name, fn in contenders.items():
            samples = latencies[name]
            cpu_start = time.process_time_ns()
            for _ in range(PER_ROUND):
                start = time.perf_counter_ns()
                fn()
                samples.append((time.perf_counter_ns() - start) / 1000)
            cpu[name] += (time.process_time_ns() - cpu_start) / 1000
    reads = ROUNDS * PER_ROUND
    return {name: (statistics.median(latencies[name]), cpu[name] / reads) for name in contenders}


def main() -> None:
    server = start_openbao(kv_v1_mount=None)
    try:
        server.api("PUT", "secret/data/bench", {"data": {"password": "bench-value-1234"}})
        import hvac

        client = hvac.Client(url=server.addr, token=server.token)

        def bare_hvac() -> object:
            return client.secrets.kv.v2.read_secret_version(
                path="bench", mount_point="secret", raise_on_deleted_version=True
            )["data"]["data"]["password"]

        parts = urlsplit(server.addr)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        headers = {"X-Vault-Token": server.token}

        def floor() -> object:
            connection.request("GET", "/v1/secret/data/bench", headers=headers)
            return json.loads(connection.getresponse().read())["data"]["data"]["password"]

        settings = VaultSettings.from_environ(
            {"VAULT_ADDR": server.addr, "VAULT_TOKEN": server.token}
        )
        backend = VaultBackend(settings=settings)
        path = backend.locate("secret/data/bench#password").path
        uncached = SecretManager(backend, ttl_seconds=0, max_stale_seconds=0)
        cached = SecretManager(backend)

        def ours_backend() -> object:
            return backend.fetch(path)["password"]

        def ours_manager() -> object:
            return uncached.get("secret/data/bench#password")

        results = measure(
            {FLOOR: floor, HVAC: bare_hvac, OURS: ours_backend, MANAGER: ours_manager}
        )
        cached.get("secret/data/bench#password")
        start = time.perf_counter_ns()
        for _ in range(CACHED_LOOPS):
            cached.get("secret/data/bench#password")
        cached_ns = (time.perf_counter_ns() - start) / CACHED_LOOPS
        calls = cached.stats().backend_calls
        paths = seed_batch(server, backend)
        batch = measure_batch(backend, paths, BATCH_LOOPS)
        with proxy(server.port, DELAY_SECONDS) as relay:
            far = VaultBackend(
                settings=VaultSettings.from_environ(
                    {"VAULT_ADDR": relay.addr, "VAULT_TOKEN": server.token}
                )
            )
            delayed = measure_batch(far, paths, DELAYED_BATCH_LOOPS)
            far.close()
    finally:
        stop_openbao(server)

    report = Report("vault", "Vault: one uncached read, and 10 paths at once (bench/vault.py)")
    report.print(
        f"uncached KV v2 read against bao server -dev on loopback ({ROUNDS * PER_ROUND} reads each)"
    )
    report.print(f"  {'':45s} {'p50 µs':>9s} {'CPU µs/read':>12s}")
    for name, (p50, cpu_us) in results.items():
        report.print(f"  {name:45s} {p50:9.1f} {cpu_us:12.1f}")
    floor_p50, floor_cpu = results[FLOOR]
    hvac_p50, hvac_cpu = results[HVAC]
    report.print("ratios (p50 latency / CPU per read)")
    report.print(f"  hvac / floor:   {hvac_p50 / floor_p50:5.2f}x / {hvac_cpu / floor_cpu:5.2f}x")
    for name in (OURS, MANAGER):
        p50, cpu_us = results[name]
        report.print(f"  {name}")
        report.print(f"    / hvac:   {p50 / hvac_p50:5.2f}x / {cpu_us / hvac_cpu:5.2f}x")
        report.print(f"    / floor:  {p50 / floor_p50:5.2f}x / {cpu_us / floor_cpu:5.2f}x")
    report.print(
        f"cached hit (SecretManager.get, warm): {cached_ns:8.1f} ns/op, backend calls {calls}"
    )
    for title, figures, loops in (
        ("loopback", batch, BATCH_LOOPS),
        (f"loopback + {DELAY_SECONDS * 1000:g} ms per request", delayed, DELAYED_BATCH_LOOPS),
    ):
        report.print(f"{BATCH_PATHS} paths at once, {title} ({loops} batches each)")
        report.print(f"  {'':45s} {'p50 ms':>9s} {'CPU ms/batch':>12s}")
        for name, (p50, cpu_us) in figures.items():
            report.print(f"  {name:45s} {p50 / 1000:9.2f} {cpu_us / 1000:12.2f}")
    ours_p50, ours_cpu = results[OURS]
    report.ratio("VaultBackend.fetch / hvac, p50", ours_p50 / hvac_p50, at_most=1.0)
    report.ratio("VaultBackend.fetch / hvac, client CPU per read", ours_cpu / hvac_cpu)
    report.ratio("VaultBackend.fetch / floor, p50", ours_p50 / floor_p50)
    report.ratio("SecretManager ttl=0 get() / hvac, p50", results[MANAGER][0] / hvac_p50)
    for where, figures in (("loopback", batch), ("+1 ms per request", delayed)):
        one, many = figures[SEQUENTIAL][0], figures[BATCHED][0]
        report.ratio(f"fetch_many / 10 sequential fetch, p50 ({where})", many / one)
    report.save()


def seed_batch(server: Any, backend: VaultBackend) -> list[str]:
    """Write the 10 paths of the batch figures; return their API paths."""
    paths = []
    for i in range(BATCH_PATHS):
        server.api("PUT", f"secret/data/batch{i}", {"data": {"k": f"v{i}"}})
        paths.append(backend.locate(f"secret/data/batch{i}#k").path)
    return paths


def measure_batch(
    backend: VaultBackend, paths: list[str], loops: int
) -> dict[str, tuple[float, float]]:
    """{name: (p50 µs, CPU µs) per batch} for the paths: one by one, then fetch_many."""

    def sequential() -> object:
        return [backend.fetch(path) for path in paths]

    def batched() -> object:
        return backend.fetch_many(paths)

    contenders = {SEQUENTIAL: sequential, BATCHED: batched}
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, float] = dict.fromkeys(contenders, 0.0)
    for fn in contenders.values():
        fn()
    for _ in range(loops):
        for name, fn in contenders.items():
            cpu_start, start = time.process_time_ns(), time.perf_counter_ns()
            fn()
            samples[name].append((time.perf_counter_ns() - start) / 1000)
            cpu[name] += (time.process_time_ns() - cpu_start) / 1000
    return {name: (statistics.median(samples[name]), cpu[name] / loops) for name in samples}


if __name__ == "__main__":
    main()
