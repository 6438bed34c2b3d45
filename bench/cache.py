"""Benchmark: the cached get_secret hit beside the floor, and the 64-thread cold-key stampede.

Run: ``python bench/cache.py`` (or ``make bench``). One run prints ratios, since absolute times on
a shared machine are not stable. The floor is what any cache must do at least: a dict lookup plus
a monotonic-clock TTL check, called as a function in the same process.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable

from yosai_secrets import get_secret
from yosai_secrets.manager import SecretManager, reset_default_manager
from yosai_secrets.testing import MemoryBackend

LOOPS = 200_000
ROUNDS = 7


def per_call_ns(fn: Callable[[], object]) -> float:
    """Best-of-rounds median cost of one call, in nanoseconds."""
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        for _ in range(LOOPS):
            fn()
        samples.append((time.perf_counter_ns() - start) / LOOPS)
    return statistics.median(samples)


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

    floor_ns = per_call_ns(floor_function())
    ours_ns = per_call_ns(ours)
    calls = stampede()
    print("cached hit (get_secret, env backend, warm)")
    print(f"  floor (dict lookup + monotonic TTL check): {floor_ns:8.1f} ns/op")
    print(f"  yosai-secrets get_secret():                {ours_ns:8.1f} ns/op")
    ratio = ours_ns / floor_ns
    print(f"  ratio ours / floor:                        {ratio:8.2f}x  (target <= 3x)")
    print("stampede: 64 threads, one cold key, backend answers in 50 ms")
    print(f"  backend calls: {calls}  (target: exactly 1)")


if __name__ == "__main__":
    main()
