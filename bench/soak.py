"""Soak: 32 threads of get_secret on a flapping Vault, then distinct values and a million keys.

Run: ``python bench/soak.py`` (60 s; ``--seconds N`` for longer, ``--keys N`` for phase 2). It
starts its own ``bao server -dev`` on a free loopback port, with a relay in a child process in
front of it (``tests/fault_support.py``) that the benchmark cuts and restores every 10 s.

- **Phase 1, soak.** ``get_secret`` from 32 threads over 16 secrets, with the process-wide
  manager built from the environment as a service's would be (``SECRET_BACKEND=vault``,
  ``SECRET_CACHE_TTL=2``), the cache warm; one more thread invalidates a random key every 200 ms
  (and every key every 5 s); the backend goes away for 10 s every 20 s. Reported: gets per
  second, latency percentiles of every get (from a log-scale histogram: no per-get memory that
  would itself drift), errors while the backend was up and while it was down (an invalidated key
  cannot be read until it is back: invalidation wins over stale serving), stale serves, backend
  calls, and the process's RSS, threads and open descriptors before and after.
- **Phase 3, distinct values** (run second). 5,000 keys with a value each: the cost of a cold
  get over the first and the last 500, since every value read is registered for log redaction.
- **Phase 2, a million keys** (run last: its memory would weigh on the others).
  ``SecretManager.get`` of 1,000,000 distinct keys (8 threads) with ``max_entries=1000``: RSS
  every 100,000 keys, and the cache's size. The backend is in-process (a million Vault reads
  would take a quarter of an hour); the cache and the manager's memo are the ones a Vault read
  goes through, since the backend is not a local one. Values come from a pool of 1,000 (phase 3
  is about distinct values). The target, at most 32 MiB of growth, is what a bounded process allows.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fault_support import ProxyProcess
from tests.servers.openbao import OpenBaoServer, start_openbao, stop_openbao

from results import Report
from yosai_secrets.backends.base import Location
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.manager import (
    SecretManager,
    default_manager,
    get_secret,
    invalidate_secret,
    reset_default_manager,
)

READERS = 32
KEYS = 16
TTL_SECONDS = 2.0
FLAP_SECONDS = 10.0
PHASE2_MAX_ENTRIES = 1000
PHASE2_THREADS = 8
PHASE3_VALUES = 5000
#: After a restore, errors of reads begun during the outage still count as the outage's.
OUTAGE_GRACE_SECONDS = 3.0
_BINS_PER_DOUBLING = 20  # histogram resolution: about 3.5 %


class WarningCount(logging.Handler):
    """Counts the library's warnings (one per key each time it starts being served stale)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class Histogram:
    """Latencies in log-scale bins (20 per doubling of nanoseconds): constant memory."""

    def __init__(self) -> None:
        self.counts = [0] * (64 * _BINS_PER_DOUBLING)

    def add(self, nanoseconds: int) -> None:
        self.counts[int(math.log2(max(nanoseconds, 1)) * _BINS_PER_DOUBLING)] += 1

    def merge(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def percentile_us(self, fraction: float) -> float:
        """The upper edge of the bin holding the ``fraction`` quantile, in µs."""
        wanted, seen = fraction * self.total, 0
        for index, count in enumerate(self.counts):
            seen += count
            if count and seen >= wanted:
                return float(2 ** ((index + 1) / _BINS_PER_DOUBLING)) / 1000
        return 0.0


def process_figures() -> dict[str, int]:
    """RSS (KiB), threads and open descriptors of this process (Linux /proc)."""
    status = Path("/proc/self/status").read_text(encoding="ascii").splitlines()
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {
        "rss_kib": int(fields["VmRSS"].split()[0]),
        "threads": threading.active_count(),
        "os_threads": int(fields["Threads"]),
        "fds": len(os.listdir("/proc/self/fd")),
    }


# -- phase 1 -------------------------------------------------------------------------------------


class Soak:
    """The readers, the invalidator and the flapper of phase 1, and what they counted."""

    def __init__(self, proxy: ProxyProcess, keys: list[str], seconds: float) -> None:
        self.proxy = proxy
        self.keys = keys
        self.seconds = seconds
        self.down = threading.Event()
        self.stop = threading.Event()
        self.histograms = [Histogram() for _ in range(READERS)]
        self.errors = {"up": 0, "down": 0}
        self.flaps = 0
        self.invalidations = 0
        self.restored_at = float("-inf")

    def run(self) -> list[int]:
        """Run for ``seconds``; return the RSS (KiB) sampled every 10 s."""
        workers = [
            threading.Thread(target=self._read, args=(h,), name=f"soak-reader-{n}")
            for n, h in enumerate(self.histograms)
        ]
        workers += [
            threading.Thread(target=self._invalidate, name="soak-invalidator"),
            threading.Thread(target=self._flap, name="soak-flapper"),
        ]
        for worker in workers:
            worker.start()
        samples = []
        end = time.monotonic() + self.seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(10.0, left))
            samples.append(process_figures()["rss_kib"])
        self.stop.set()
        for worker in workers:
            worker.join()
        return samples

    def _read(self, histogram: Histogram) -> None:
        keys, clock = self.keys, time.perf_counter_ns
        index = random.randrange(len(keys))
        while not self.stop.is_set():
            key = keys[index % len(keys)]
            index += 1
            start = clock()
            try:
                get_secret(key)
            except ConfigurationError:
                self.errors["down" if self._in_outage() else "up"] += 1
            histogram.add(clock() - start)

    def _in_outage(self) -> bool:
        """Down now, or back for less than one read deadline (a read begun while down)."""
        return self.down.is_set() or time.monotonic() - self.restored_at < OUTAGE_GRACE_SECONDS

    def _invalidate(self) -> None:
        beat = 0
        while not self.stop.wait(0.2):
            beat += 1
            invalidate_secret(None if beat % 25 == 0 else random.choice(self.keys))
            self.invalidations += 1

    def _flap(self) -> None:
        while not self.stop.wait(FLAP_SECONDS):
            if self.down.is_set():
                self.proxy.restore()
                self.restored_at = time.monotonic()
                self.down.clear()
            else:
                self.down.set()
                self.proxy.cut()
            self.flaps += 1
        if self.down.is_set():
            self.proxy.restore()
            self.down.clear()


def seed(server: OpenBaoServer) -> list[str]:
    """Write the phase-1 secrets; return their keys."""
    keys = []
    for n in range(KEYS):
        path = f"secret/data/soak/s{n}"
        status, _ = server.api("PUT", path, {"data": {"value": f"soak-{n}-{os.urandom(8).hex()}"}})
        assert status == 200, status
        keys.append(f"{path}#value")
    return keys


def phase1(report: Report, server: OpenBaoServer, proxy: ProxyProcess, seconds: float) -> None:
    """The soak, with the process-wide manager built from the environment."""
    keys = seed(server)
    saved = dict(os.environ)
    os.environ.update(
        SECRET_BACKEND="vault",
        VAULT_ADDR=proxy.addr,
        VAULT_TOKEN=server.token,
        VAULT_TIMEOUT="1",
        VAULT_MAX_RETRIES="1",
        SECRET_CACHE_TTL=str(TTL_SECONDS),
        SECRET_READ_TIMEOUT="2",
    )
    reset_default_manager()
    warnings = WarningCount()
    logging.getLogger("yosai_secrets").addHandler(warnings)  # counted here, not printed
    for key in keys:
        get_secret(key)
    figures = {"before": process_figures()}
    soak = Soak(proxy, keys, seconds)
    started = time.monotonic()
    rss_series = soak.run()
    elapsed = time.monotonic() - started
    time.sleep(TTL_SECONDS)  # refreshes started at the end finish
    figures["after"] = process_figures()
    stats = default_manager().stats()
    default_manager().close()
    gc.collect()  # sockets a reset connection left in reference cycles are freed here
    figures["closed, gc"] = process_figures()
    reset_default_manager()
    os.environ.clear()
    os.environ.update(saved)  # the later phases build their managers with the defaults
    report.print(
        f"phase 1: {READERS} threads of get_secret over {KEYS} Vault secrets for {elapsed:.0f} s; "
        f"TTL {TTL_SECONDS:g} s; invalidations every 0.2 s ({soak.invalidations}); the backend "
        f"cut and restored every {FLAP_SECONDS:g} s ({soak.flaps} flaps)"
    )
    report.print(f"  stale serves           {stats.stale_serves:>12,d}")
    report.print(f"  stale-serving warnings {warnings.count:>12,d}")
    report.print(f"  backend calls          {stats.backend_calls:>12,d}")
    report_phase1(report, soak, elapsed, figures)
    report.print(f"  RSS every 10 s (KiB)   {', '.join(f'{v:,d}' for v in rss_series)}")


def report_phase1(
    report: Report, soak: Soak, elapsed: float, figures: dict[str, dict[str, int]]
) -> None:
    """Print phase 1's latencies, errors and process figures; keep its ratios."""
    total = Histogram()
    for histogram in soak.histograms:
        total.merge(histogram)
    gets_per_second = total.total / elapsed
    report.print(f"  gets                   {total.total:>12,d}  ({gets_per_second:,.0f}/s)")
    for label, fraction in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0)):
        report.print(f"  latency {label:<14s} {total.percentile_us(fraction):>12,.1f} µs")
    report.print(f"  errors, backend up     {soak.errors['up']:>12,d}")
    report.print(
        f"  errors, backend down   {soak.errors['down']:>12,d}  (invalidated keys; or within "
        f"{OUTAGE_GRACE_SECONDS:g} s of the restore)"
    )
    report.print("  " + " " * 22 + "".join(f"{when:>15s}" for when in figures))
    for name in ("rss_kib", "threads", "os_threads", "fds"):
        report.print(f"  {name:22s}" + "".join(f"{f[name]:>15,d}" for f in figures.values()))
    before, after, closed = figures["before"], figures["after"], figures["closed, gc"]
    report.ratio("phase 1 gets per second", gets_per_second, unit="/s", digits=0)
    report.ratio("phase 1 p99 latency", total.percentile_us(0.99), unit=" µs", digits=1)
    report.ratio("phase 1 p99.9 latency", total.percentile_us(0.999), unit=" µs", digits=1)
    report.ratio(
        "phase 1 errors while the backend was up", soak.errors["up"], at_most=0, unit="", digits=0
    )
    drift = (after["rss_kib"] - before["rss_kib"]) / 1024
    report.ratio("phase 1 RSS drift (after - before)", drift, unit=" MiB", digits=1)
    for name in ("threads", "fds"):
        report.ratio(
            f"phase 1 {name}, after - before", after[name] - before[name], unit="", digits=0
        )
    report.ratio(
        "phase 1 fds, after close() and gc - before",
        closed["fds"] - before["fds"],
        at_most=0,
        unit="",
        digits=0,
    )


# -- phases 2 and 3 ------------------------------------------------------------------------------


class Generated:
    """An in-process backend that has every key: the value of a path is made from its name."""

    name = "generated"

    def __init__(self, values: Callable[[str], str]) -> None:
        self.values = values

    def locate(self, key: str) -> Location:
        return Location(key, None)

    def fetch(self, path: str) -> str:
        return self.values(path)

    def describe(self, path: str) -> str:
        return f"generated {path}"


def phase2(report: Report, keys: int) -> None:
    """Cycle through ``keys`` distinct keys with a small cache; memory must stay bounded."""
    pool = [f"pooled-value-{n:04d}-{os.urandom(6).hex()}" for n in range(1000)]
    manager = SecretManager(
        Generated(lambda path: pool[hash(path) % len(pool)]), max_entries=PHASE2_MAX_ENTRIES
    )
    before = process_figures()
    started = time.monotonic()
    sizes: list[int] = []
    rss: list[int] = []
    errors: list[str] = []

    def cycle(first: int) -> None:
        for n in range(first, keys, PHASE2_THREADS):
            try:
                manager.get(f"KEY_{n}")
            except ConfigurationError as exc:  # counted: a read past its deadline on a busy box
                errors.append(type(exc).__name__)
            if n % 100_000 == 0:
                sizes.append(manager.stats().size)
                rss.append(process_figures()["rss_kib"])

    threads = [threading.Thread(target=cycle, args=(t,)) for t in range(PHASE2_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    after = process_figures()
    stats = manager.stats()
    report.print(
        f"phase 2: {keys:,d} distinct keys, {PHASE2_THREADS} threads, max_entries="
        f"{PHASE2_MAX_ENTRIES} ({elapsed:.0f} s, {keys / elapsed:,.0f} cold gets/s)"
    )
    report.print(f"  RSS before / after     {before['rss_kib']:,d} / {after['rss_kib']:,d} KiB")
    largest = max(sizes, default=0)
    report.print(f"  cache size             {stats.size:,d} (largest sampled: {largest:,d})")
    report.print(f"  evictions              {stats.evictions:,d}")
    report.print(f"  errors                 {len(errors):,d} {sorted(set(errors))}")
    report.print(f"  RSS every 100,000 keys {', '.join(f'{v // 1024:,d}' for v in rss)} MiB")
    report.ratio(
        f"phase 2 RSS growth over {keys:,d} keys",
        (after["rss_kib"] - before["rss_kib"]) / 1024,
        at_most=32,
        unit=" MiB",
        digits=1,
    )
    report.ratio("phase 2 cache size / max_entries", stats.size / PHASE2_MAX_ENTRIES, at_most=1.0)


def phase3(report: Report) -> None:
    """Distinct values: the cost of a cold get as the registered values accumulate."""
    manager = SecretManager(Generated(lambda path: f"distinct-{path}-{os.urandom(8).hex()}"))
    before = process_figures()
    costs: list[float] = []
    for n in range(PHASE3_VALUES):
        start = time.perf_counter()
        manager.get(f"VALUE_{n}")
        costs.append(time.perf_counter() - start)
    after = process_figures()
    first = sum(costs[:500]) / 500 * 1e6
    last = sum(costs[-500:]) / 500 * 1e6
    report.print(
        f"phase 3: {PHASE3_VALUES:,d} keys with distinct values: a cold get costs {first:,.0f} µs "
        f"over the first 500, {last:,.0f} µs over the last 500; RSS {before['rss_kib']:,d} -> "
        f"{after['rss_kib']:,d} KiB"
    )
    report.ratio("phase 3 cold get, last 500 / first 500", last / first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="phase 1's length")
    parser.add_argument("--keys", type=int, default=1_000_000, help="phase 2's distinct keys")
    args = parser.parse_args()
    report = Report("soak", "Soak: 32 threads on a flapping Vault, then 1M keys (bench/soak.py)")
    server = start_openbao(kv_v1_mount=None)
    try:
        with ProxyProcess(server.port) as proxy:
            phase1(report, server, proxy, args.seconds)
    finally:
        stop_openbao(server)
    phase3(report)  # before phase 2, whose million keys would weigh on its timings
    phase2(report, args.keys)
    report.save()


if __name__ == "__main__":
    main()
