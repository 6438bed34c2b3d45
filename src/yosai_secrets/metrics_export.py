"""The Prometheus export of :mod:`yosai_secrets.metrics` (the ``metrics`` extra).

Names (all prefixed ``yosai_secrets_``): ``cache_hits_total``, ``cache_misses_total``,
``stale_served_total``, ``backend_requests_total{backend,outcome}``,
``backend_request_duration_seconds{backend}`` (a histogram), ``vault_token_ttl_seconds``, and,
from :class:`PostureGauges`, ``secret_age_seconds{key}`` and ``rotation_open``. Key names are
labels; a value never is.

**One process** (the development server, a worker of its own): :class:`Collector` reads the
counters at scrape time, so nothing is done on the read path for the export.

**Several processes** (gunicorn workers, with ``PROMETHEUS_MULTIPROC_DIR`` set before they
start): ``prometheus_client``'s multiprocess mode exports only its own metric objects, which write
to files in that directory; a custom collector would show the counters of whichever worker answered
the scrape. So each worker runs a :class:`Mirror`: a daemon thread that, every
:data:`MIRROR_INTERVAL_SECONDS`, copies the *increase* of its counters since the last copy into
multiprocess ``Counter``/``Histogram`` objects (and its token's TTL into a ``livemin`` gauge), once
more when the worker exits, and once in the worker answering a scrape. The read path still pays
nothing: the copying happens off it, and a backend call's duration is only appended to a list
(:attr:`~yosai_secrets.metrics.BackendReads.samples`) for the mirror to observe. A scrape thus
lags the other workers by at most the interval. The posture gauges (ages, rotation journal) are
the same in every process and are computed by the worker answering.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from . import forksafe
from .errors import MissingDependencyError
from .metrics import Snapshot, reads, snapshot

__all__ = [
    "MIRROR_INTERVAL_SECONDS",
    "MULTIPROC_VARIABLE",
    "Collector",
    "Mirror",
    "PostureGauges",
    "mark_process_dead",
    "multiprocess_mode",
    "render",
    "start_mirror",
    "stop_mirror",
]

#: The variable that turns multiprocess mode on (``prometheus_client``'s own name).
MULTIPROC_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"
#: How often a worker copies its counters into the shared files.
MIRROR_INTERVAL_SECONDS: Final = 5.0

_P: Final = "yosai_secrets_"
_HELP: Final = {
    "cache_hits": "Secret reads served from the cache.",
    "cache_misses": "Secret reads the cache did not hold (a backend call followed).",
    "stale_served": "Reads served an expired value because its backend failed.",
    "backend_requests": "Calls to a secret backend, by backend and outcome (ok/not_found/error).",
    "backend_request_duration_seconds": "Duration of calls to a secret backend.",
    "vault_token_ttl_seconds": "Seconds the Vault token has left to live (least of the process).",
    "secret_age_seconds": "Seconds since the secret's last rotation stamp.",
    "rotation_open": "1 while a rotation journal exists (a rotation started and not finished).",
}


def _prometheus() -> Any:
    try:
        import prometheus_client
        import prometheus_client.core
        import prometheus_client.multiprocess
        import prometheus_client.utils
    except ImportError:
        raise MissingDependencyError("prometheus_client", "metrics", "exporting metrics") from None
    return prometheus_client


def multiprocess_mode(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``PROMETHEUS_MULTIPROC_DIR`` is set (the counters then go through files)."""
    return bool((os.environ if environ is None else environ).get(MULTIPROC_VARIABLE, "").strip())


class PostureGauges:
    """The gauges that are the same in every process: secret ages and an open rotation.

    Args:
        stamps: returns each secret's last rotation time (None: unknown); called at most once
            per ``refresh_seconds`` (it may ask the store), the ages being computed per scrape.
        journal: the rotation journal whose existence ``rotation_open`` reports (None: not shown).
        refresh_seconds: how long the stamps are reused.
        clock: a monotonic clock in seconds.
    """

    def __init__(
        self,
        stamps: Callable[[], Mapping[str, datetime | None]],
        journal: Path | None = None,
        *,
        refresh_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stamps = stamps
        self._journal = journal
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, datetime] = {}
        self._fetched_at = float("-inf")

    def ages(self, now: datetime | None = None) -> dict[str, float]:
        """Seconds since each secret's stamp (secrets with no stamp are left out)."""
        with self._lock:
            if self._clock() - self._fetched_at >= self._refresh_seconds:
                self._held = {k: v for k, v in self._stamps().items() if v is not None}
                self._fetched_at = self._clock()
            held = dict(self._held)
        moment = now or datetime.now(UTC)
        return {key: max(0.0, (moment - stamp).total_seconds()) for key, stamp in held.items()}

    def rotation_open(self) -> bool | None:
        """Whether the journal exists (None when no journal is watched)."""
        return None if self._journal is None else self._journal.exists()

    def collect(self) -> Iterator[Any]:
        """The families, for a ``prometheus_client`` registry."""
        core = _prometheus().core
        ages = core.GaugeMetricFamily(
            _P + "secret_age_seconds", _HELP["secret_age_seconds"], labels=["key"]
        )
        for key, seconds in sorted(self.ages().items()):
            ages.add_metric([key], seconds)
        yield ages
        opened = self.rotation_open()
        if opened is not None:
            yield core.GaugeMetricFamily(
                _P + "rotation_open", _HELP["rotation_open"], value=float(opened)
            )


class Collector:
    """Reads this process's counters at scrape time (register it in a ``CollectorRegistry``).

    Args:
        posture: the secret-age and rotation gauges to add (None: not exported).
    """

    def __init__(self, posture: PostureGauges | None = None) -> None:
        self._posture = posture

    def collect(self) -> Iterator[Any]:
        """The families of every name, for a ``prometheus_client`` registry."""
        core = _prometheus().core
        now = snapshot()
        for name, value in (
            ("cache_hits", now.cache_hits),
            ("cache_misses", now.cache_misses),
            ("stale_served", now.stale_served),
        ):
            yield core.CounterMetricFamily(_P + name, _HELP[name], value=value)
        requests = core.CounterMetricFamily(
            _P + "backend_requests", _HELP["backend_requests"], labels=["backend", "outcome"]
        )
        for (backend, outcome), count in sorted(now.backend_requests.items()):
            requests.add_metric([backend, outcome], count)
        yield requests
        yield _histogram(core, now)
        ttl = core.GaugeMetricFamily(
            _P + "vault_token_ttl_seconds", _HELP["vault_token_ttl_seconds"]
        )
        if now.vault_token_ttl_seconds is not None:
            ttl.add_metric([], now.vault_token_ttl_seconds)
        yield ttl
        if self._posture is not None:
            yield from self._posture.collect()


def _histogram(core: Any, now: Snapshot) -> Any:
    family = core.HistogramMetricFamily(
        _P + "backend_request_duration_seconds",
        _HELP["backend_request_duration_seconds"],
        labels=["backend"],
    )
    # Spelled as prometheus_client's Histogram spells them ("1.0"), as the multiprocess files do.
    spell = _prometheus().utils.floatToGoString
    bounds = [*(spell(b) for b in reads().buckets), "+Inf"]
    for backend, counts in sorted(now.durations.items()):
        cumulative, running = [], 0
        for bound, count in zip(bounds, counts, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        family.add_metric([backend], cumulative, now.duration_seconds.get(backend, 0.0))
    return family


class Mirror:
    """Copies this process's counters into ``prometheus_client``'s multiprocess metrics.

    See the module's docstring for why. :func:`start_mirror` makes and starts the process's one
    mirror; :meth:`sync` copies now.
    """

    def __init__(self, interval_seconds: float = MIRROR_INTERVAL_SECONDS) -> None:
        client = _prometheus()
        self._interval_seconds = interval_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counters = {
            name: client.Counter(_P + name, _HELP[name], registry=None)
            for name in ("cache_hits", "cache_misses", "stale_served")
        }
        self._requests = client.Counter(
            _P + "backend_requests",
            _HELP["backend_requests"],
            ["backend", "outcome"],
            registry=None,
        )
        self._durations = client.Histogram(
            _P + "backend_request_duration_seconds",
            _HELP["backend_request_duration_seconds"],
            ["backend"],
            buckets=reads().buckets,
            registry=None,
        )
        # Made on the first TTL known: a gauge made earlier would show 0, a token about to die.
        self._ttl: Any = None
        self._baseline = snapshot()  # counted before the mirror (a parent's, a check's): not ours
        reads().samples = []
        forksafe.register(self)

    def start(self) -> None:
        """Copy every interval from a daemon thread (and once at exit)."""
        with self._lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name="yosai-secrets-metrics", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """Copy once more and stop the thread."""
        self._stop.set()
        self.sync()

    def sync(self) -> None:
        """Copy the counters' increase since the last copy (never raises: it logs)."""
        try:
            with self._lock:
                self._copy(snapshot())
        except Exception as exc:  # the export must never take a worker down
            import logging

            logging.getLogger("yosai_secrets.metrics").warning(
                "copying the metrics to %s failed: %s", MULTIPROC_VARIABLE, type(exc).__name__
            )

    def after_fork_in_child(self) -> None:
        """In a forked child: the parent's counts are the parent's; the thread starts afresh."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._baseline = snapshot()
        reads().samples = []
        self.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_seconds):
            self.sync()

    def _copy(self, now: Snapshot) -> None:
        before = self._baseline
        for name, counter in self._counters.items():
            grown = getattr(now, name) - getattr(before, name)
            if grown > 0:  # a manager collected since takes its counts along: never negative
                counter.inc(grown)
        for (backend, outcome), count in now.backend_requests.items():
            grown = count - before.backend_requests.get((backend, outcome), 0)
            if grown > 0:
                self._requests.labels(backend=backend, outcome=outcome).inc(grown)
        for backend, seconds in reads().drain():
            self._durations.labels(backend=backend).observe(seconds)
        if now.vault_token_ttl_seconds is not None:
            if self._ttl is None:
                self._ttl = _prometheus().Gauge(
                    _P + "vault_token_ttl_seconds",
                    _HELP["vault_token_ttl_seconds"],
                    registry=None,
                    multiprocess_mode="livemin",
                )
            self._ttl.set(now.vault_token_ttl_seconds)
        self._baseline = now


class _Holder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mirror: Mirror | None = None


_HOLDER: Final = _Holder()


def start_mirror() -> Mirror:
    """Start this process's :class:`Mirror` (once; later calls return it).

    gunicorn's ``post_worker_init`` hook (:mod:`yosai_secrets.api.gunicorn_conf`) calls it in
    each worker; ``/metrics`` calls it too, for servers without that hook.

    Raises:
        MissingDependencyError: ``prometheus_client`` is not installed.
    """
    with _HOLDER.lock:
        if _HOLDER.mirror is None:
            _HOLDER.mirror = Mirror()
            atexit.register(_HOLDER.mirror.stop)
        mirror = _HOLDER.mirror
    mirror.start()
    return mirror


def stop_mirror() -> None:
    """Copy this process's counters one last time (gunicorn's ``worker_exit`` hook)."""
    mirror = _HOLDER.mirror
    if mirror is not None:
        mirror.stop()


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn's ``child_exit`` hook); its counters stay."""
    if multiprocess_mode():
        _prometheus().multiprocess.mark_process_dead(pid)


def render(posture: PostureGauges | None = None) -> tuple[bytes, str]:
    """The text a scrape gets, and its content type.

    In multiprocess mode: every process's counters from the shared files (this process's copied
    first), plus the posture gauges; else this process's counters read now.

    Raises:
        MissingDependencyError: ``prometheus_client`` is not installed.
    """
    client = _prometheus()
    registry = client.CollectorRegistry(auto_describe=False)
    if multiprocess_mode():
        start_mirror().sync()
        client.multiprocess.MultiProcessCollector(registry)
        if posture is not None:
            registry.register(posture)
    else:
        registry.register(Collector(posture))
    return client.generate_latest(registry), client.CONTENT_TYPE_LATEST
