"""Benchmark: the cached get_secret hit beside the floor, and the 64-thread cold-key stampede.

Run: ``python bench/cache.py`` (or ``make bench``). One run prints ratios (and writes them to
bench/RESULTS.md), since absolute times on a shared machine are not stable. The floor is what any
cache must do at least: a dict lookup plus a monotonic-clock TTL check, called as a function in the
same process. The cached hit is the figure fork safety (and anything else on the hit path) must
not worsen.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable

from results import Report
from yosai_secrets import get_secret
from yosai_secrets.manager import SecretManager, reset_default_manager
from yosai_secrets.testing import MemoryBackend

LOOPS = 200_000
ROUNDS = 7


def per_call_ns(contenders: dict[str, Callable[[], object]]) -> dict[str, float]:
    """{name: median over rounds of the cost of one call, in ns}, contenders interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(ROUNDS):
        for name, fn in contenders.items():
            start = time.perf_counter_ns()
            for _ in range(LOOPS):
                fn()
            samples[name].append((time.perf_counter_ns() - start) / LOOPS)
    return {name: statistics.median(values) for name, values in samples.items()}


def floor_function() -> Callable[[], object]:
    store = {"DB_PASSWORD": ("value", time.monotonic() + 300)}
    clock = time.monotonic

    def lookup() -> object:
        entry = store.get("DB_PASSWORD")
        if entry is not None and entry[1] > clock():
            return entry[0]
        return None

    return lookup


def stampede(threads: int = 64) -> int:
    backend = MemoryBackend({"COLD": "cold-value-1234"})
    backend.delay_seconds = 0.05  # a network round trip's worth of time
    manager = SecretManager(backend)
    barrier = threading.Barrier(threads)

    def read() -> None:
        barrier.wait()
        manager.get("COLD")

    workers = [threading.Thread(target=read) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return backend.calls


def main() -> None:
    os.environ["BENCH_SECRET"] = "bench-secret-value"
    reset_default_manager()
    get_secret("BENCH_SECRET")  # warm

    def ours() -> object:
        return get_secret("BENCH_SECRET")

    ns = per_call_ns({"floor": floor_function(), "ours": ours})
    floor_ns, ours_ns = ns["floor"], ns["ours"]
    calls = stampede()
    report = Report("cache", "Cache: the cached hit and the cold-key stampede (bench/cache.py)")
    report.print(f"cached hit (get_secret, env backend, warm; median of {ROUNDS} x {LOOPS} calls)")
    report.print(f"  floor (dict lookup + monotonic TTL check): {floor_ns:8.1f} ns/op")
    report.print(f"  yosai-secrets get_secret():                {ours_ns:8.1f} ns/op")
    report.print("stampede: 64 threads, one cold key, backend answers in 50 ms")
    report.print(f"  backend calls: {calls}")
    report.ratio("get_secret cached hit / floor", ours_ns / floor_ns, at_most=3.0)
    report.ratio("stampede backend calls", calls, at_most=1, unit="", digits=0)
    report.save()


if __name__ == "__main__":
    main()
