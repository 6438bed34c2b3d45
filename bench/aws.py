"""Benchmark: the AWS backend against moto's server, beside the AWS caching client and the floor.

Run: ``python bench/aws.py`` (or ``make bench``). It starts its own ``moto_server`` on a free
loopback port, creates 40 secrets, and measures in one run:

1. **Cold reads of 40 secrets**: one by one (``get`` each, fresh manager) vs batched
   (``get_many``): API calls made (counted with botocore's ``before-call`` hook), wall time and
   our process's CPU time. moto closes the connection after every answer, so its wall times
   overstate what boto3 pays against AWS; the client CPU time is the fairer figure.
2. **A cached hit**: ``SecretManager.get`` vs ``aws-secretsmanager-caching``'s
   ``SecretCache.get_secret_string`` on the same warm secrets, beside the floor (a dict lookup and
   a monotonic-clock check in a function).
3. **16 threads on one cold key**: API calls made by ours vs theirs.
4. **A reader when the cached value is due for refresh** and the backend is slow (0.3 s per
   call): how long one read takes, ours vs theirs.

Ratios are printed and written to bench/RESULTS.md, since absolute figures on a shared machine
drift.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.aws_support import CallLog, slow_down
from tests.servers.moto import MotoServer, start_moto, stop_moto

from results import Report
from yosai_secrets.backends.aws import AwsBackend
from yosai_secrets.manager import SecretManager
from yosai_secrets.testing import FakeClock

SECRETS = 40
COLD_REPEATS = 5
HIT_LOOPS = 20_000
THREADS = 16


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Run ``fn`` once; return (wall ms, our CPU ms)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def per_call_ns(fn: Callable[[str], object], keys: list[str]) -> float:
    """Median over 5 rounds of the time per call of ``fn(key)`` over ``keys``, in ns."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter_ns()
        for key in keys:
            fn(key)
        rounds.append((time.perf_counter_ns() - start) / len(keys))
    return statistics.median(rounds)


def _each(manager: SecretManager, names: list[str]) -> None:
    for name in names:
        manager.get(name)


def cold_reads(report: Report, server: MotoServer, names: list[str]) -> None:
    client = server.client()
    calls = CallLog(client)
    backend = AwsBackend(client)
    backend.fetch(names[0])  # the connection pool and code paths warm, outside the timing
    rows: dict[str, list[tuple[float, float]]] = {"one by one": [], "batched": []}
    counts: dict[str, int] = {}
    for _ in range(COLD_REPEATS):
        for label in rows:
            manager = SecretManager(backend)
            before = calls.count()
            if label == "one by one":
                rows[label].append(timed(partial(_each, manager, names)))
            else:
                rows[label].append(timed(partial(manager.get_many, names)))
            counts[label] = calls.count() - before
    report.print(f"1. cold read of {len(names)} secrets (median of {COLD_REPEATS} runs)")
    report.print(f"   {'':<12}{'API calls':>10}{'wall ms':>10}{'client CPU ms':>15}")
    medians = {}
    for label, samples in rows.items():
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        medians[label] = (wall, cpu)
        report.print(f"   {label:<12}{counts[label]:>10}{wall:>10.1f}{cpu:>15.1f}")
    one, batch = medians["one by one"], medians["batched"]
    report.print(
        f"   batched: {counts['one by one'] / counts['batched']:.0f}x fewer calls, "
        f"{one[0] / batch[0]:.1f}x less wall time, {one[1] / batch[1]:.1f}x less client CPU"
    )
    calls_ratio = counts["one by one"] / counts["batched"]
    report.ratio("cold 40: one-by-one / batched API calls", calls_ratio)
    report.ratio("cold 40: one-by-one / batched client CPU", one[1] / batch[1])


def cached_hits(report: Report, server: MotoServer, names: list[str]) -> None:
    from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

    manager = SecretManager(AwsBackend(server.client()))
    theirs = SecretCache(config=SecretCacheConfig(), client=server.client())
    manager.get_many(names)
    for name in names:
        theirs.get_secret_string(name)
    cycle = names * (HIT_LOOPS // len(names))
    table = {name: (f"value-{name}", time.monotonic() + 300) for name in names}

    def floor(key: str) -> object:
        value, expires = table[key]
        return value if expires > time.monotonic() else None

    ns = {
        "floor (dict + monotonic)": per_call_ns(floor, cycle),
        "ours (SecretManager.get)": per_call_ns(manager.get, cycle),
        "aws-secretsmanager-caching": per_call_ns(
            theirs.get_secret_string, cycle[: len(cycle) // 10]
        ),
    }
    report.print(f"2. cached hit, over the same {len(names)} warm secrets (median ns per call)")
    for label, value in ns.items():
        report.print(f"   {label:<28}{value:>10.0f} ns")
    ours_ns, theirs_ns, floor_ns = (
        ns["ours (SecretManager.get)"],
        ns["aws-secretsmanager-caching"],
        ns["floor (dict + monotonic)"],
    )
    report.print(
        f"   ours is {theirs_ns / ours_ns:.0f}x faster than the AWS caching client "
        f"(target >= 100x); ours = {ours_ns / floor_ns:.1f}x the floor, "
        f"theirs = {theirs_ns / floor_ns:.0f}x the floor"
    )
    report.ratio("cached hit: AWS caching client / ours", theirs_ns / ours_ns, at_least=100)
    report.ratio("cached hit: ours / floor", ours_ns / floor_ns)


def _race(read: Callable[[], object]) -> None:
    barrier = threading.Barrier(THREADS)

    def run() -> None:
        barrier.wait()
        read()

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def one_cold_key(report: Report, server: MotoServer) -> None:
    from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

    results = {}
    for label in ("ours", "theirs"):
        name = f"bench-hot-{uuid.uuid4().hex[:8]}"
        server.client().create_secret(Name=name, SecretString="hot-value")
        client = server.client()
        calls = CallLog(client)
        if label == "ours":
            manager = SecretManager(AwsBackend(client))
            _race(partial(manager.get, name))
        else:
            cache = SecretCache(config=SecretCacheConfig(), client=client)
            _race(partial(cache.get_secret_string, name))
        results[label] = sorted(set(calls.operations)), calls.count()
    report.print(f"3. {THREADS} threads on one cold key: API calls")
    for label, (ops, count) in results.items():
        report.print(f"   {label:<8}{count:>3}  ({', '.join(ops)})")
    ours_calls = results["ours"][1]
    report.ratio("16 threads, 1 cold key: our API calls", ours_calls, at_most=1, unit="", digits=0)


def refresh_due(report: Report, server: MotoServer) -> None:
    from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

    name = f"bench-refresh-{uuid.uuid4().hex[:8]}"
    server.client().create_secret(Name=name, SecretString="refresh-value")
    ours_client, theirs_client = server.client(), server.client()
    clock = FakeClock()
    manager = SecretManager(AwsBackend(ours_client), ttl_seconds=1, clock=clock)
    theirs = SecretCache(config=SecretCacheConfig(secret_refresh_interval=1), client=theirs_client)
    manager.get(name)
    theirs.get_secret_string(name)
    slow_down(ours_client, 0.3)
    slow_down(theirs_client, 0.3)
    clock.advance(1.5)
    time.sleep(1.5)  # their clock is the wall clock
    ours_ms = timed(lambda: manager.get(name))[0]
    theirs_ms = timed(lambda: theirs.get_secret_string(name))[0]
    report.print("4. one read once the value is due for refresh, backend taking 0.3 s per call")
    report.print(
        f"   ours {ours_ms:8.1f} ms (waits for the refresh at most refresh_wait_seconds, 50 ms, "
        "then serves the old value)"
    )
    report.print(f"   theirs {theirs_ms:6.1f} ms (the reader waits for describe + get)")
    report.ratio("read due for refresh: theirs / ours, wall", theirs_ms / ours_ms)
    time.sleep(0.5)  # let our background refresh finish before the server stops


def main() -> None:
    report = Report("aws", "AWS Secrets Manager against moto's server (bench/aws.py)")
    server = start_moto()
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    try:
        client, prefix = server.client(), f"bench-{uuid.uuid4().hex[:8]}"
        names = [f"{prefix}/S{i:02d}" for i in range(SECRETS)]
        for name in names:
            client.create_secret(Name=name, SecretString=f"value-of-{name}")
        report.print(f"moto_server on loopback, Python {sys.version.split()[0]}\n")
        cold_reads(report, server, names)
        cached_hits(report, server, names)
        one_cold_key(report, server)
        refresh_due(report, server)
    finally:
        stop_moto(server)
    report.save()


if __name__ == "__main__":
    main()
