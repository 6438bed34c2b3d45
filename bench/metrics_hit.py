"""A cached hit with the Prometheus export running and without, and what the export costs elsewhere.

"Metrics on" is the worst case of a gunicorn worker: multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``
set before anything imports ``prometheus_client``), the worker's mirror thread copying counters
every few seconds, and a scraper thread rendering ``/metrics``' text every second (Prometheus
scrapes every 15 to 60 s). "Metrics off" is the same hit while the scraper waits. The hit path has
no metrics code (the counters read are the manager's own), so the two should be alike; this
checks it, in interleaved rounds (best of 301 rounds of 5,000 calls, as ``bench/cached_hit.py``).

Also timed: one backend call's counting (:func:`yosai_secrets.metrics.observe_read`, paid per
backend call, never per hit) and one scrape (``render()``), with 6 keys and 3 backends counted.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable

_PROM_DIR = tempfile.TemporaryDirectory()
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _PROM_DIR.name  # before prometheus_client is imported
os.environ["METRICS_BENCH_KEY"] = "x" * 32
os.environ["YOSAI_AUDIT_SUMMARY_SECONDS"] = "0"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from results import Report  # noqa: E402
from yosai_secrets import SecretManager, metrics  # noqa: E402
from yosai_secrets.metrics_export import render, start_mirror  # noqa: E402

ROUNDS, CALLS = 301, 5_000
KEY = "METRICS_BENCH_KEY"


class Scraper:
    """Renders the metrics text every ``interval_seconds`` while switched on."""

    def __init__(self, interval_seconds: float = 1.0) -> None:
        self.on = threading.Event()
        self.scrapes = 0
        self._interval_seconds = interval_seconds
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            self.on.wait()
            render()
            self.scrapes += 1
            time.sleep(self._interval_seconds)


def one_round_ns(fn: Callable[[str], object]) -> float:
    """The mean time of one call over CALLS calls, in nanoseconds."""
    start = time.perf_counter()
    for _ in range(CALLS):
        fn(KEY)
    return (time.perf_counter() - start) / CALLS * 1e9


def best_hits(get: Callable[[str], object], scraper: Scraper) -> dict[str, float]:
    """The best round of the hit with the scraper off and on, rounds interleaved."""
    samples: dict[str, list[float]] = {"metrics off": [], "metrics on": []}
    for _ in range(ROUNDS):
        scraper.on.clear()
        samples["metrics off"].append(one_round_ns(get))
        scraper.on.set()
        samples["metrics on"].append(one_round_ns(get))
    scraper.on.clear()
    return {name: min(values) for name, values in samples.items()}


def observe_ns() -> float:
    """Best mean cost of counting one backend call, in nanoseconds."""
    best = float("inf")
    for _ in range(51):
        start = time.perf_counter()
        for _ in range(CALLS):
            metrics.observe_read("vault", 0.0031, None)
        best = min(best, (time.perf_counter() - start) / CALLS * 1e9)
    metrics.reads().drain()
    return best


def render_ms() -> float:
    """Best time of one scrape's render, in milliseconds."""
    best = float("inf")
    for _ in range(31):
        start = time.perf_counter()
        render()
        best = min(best, (time.perf_counter() - start) * 1e3)
    return best


def main() -> None:
    """Print the hits, the counting and scrape costs, and write the section of RESULTS.md."""
    report = Report("metrics_hit", "A cached hit with the metrics export on and off")
    manager = SecretManager("env")
    manager.get(KEY)  # the one backend read
    for name in ("DB_PASSWORD", "SECRET_KEY", "AUTH0_CLIENT_SECRET"):
        manager.get(name, default="")
    start_mirror()
    text = render()[0].decode()
    assert "yosai_secrets_cache_hits_total" in text and "x" * 32 not in text
    scraper = Scraper()
    best = best_hits(manager.get, scraper)
    report.print(f"best of {ROUNDS} interleaved rounds of {CALLS:,} hits; multiprocess mode")
    for name, ns in best.items():
        report.print(f"  manager.get() hit, {name:12} {ns:6.0f} ns")
    report.print(f"  scrapes rendered during the 'on' rounds: {scraper.scrapes}")
    counting, scrape = observe_ns(), render_ms()
    report.print(f"counting one backend call (observe_read): {counting:.0f} ns")
    report.print(f"one scrape (render, multiprocess, this process's files): {scrape:.2f} ms")
    report.ratio("hit, metrics on / off", best["metrics on"] / best["metrics off"], at_most=1.2)
    if "--no-save" not in sys.argv:
        report.save()


if __name__ == "__main__":
    main()
