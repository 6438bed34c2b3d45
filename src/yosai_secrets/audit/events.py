"""Audit events: who read which secret, from where, and who ran which operation, and why.

Three kinds of event, each a flat JSON-ready mapping (names, paths, counts and versions, never a
value), logged on the ``yosai_secrets.audit`` logger (the mapping is the record's ``audit``
attribute) and, when ``YOSAI_AUDIT_LOG`` names a file, appended to it as one JSON line:

* ``read``: one per read that reaches a backend, successful or not (:func:`emit_access`);
* ``operation``: a rotation, an incident step... with the user, host and reason
  (:func:`emit_operation`);
* ``summary``: the per-key counts of this process — reads, errors and cache hits, which are
  counted, never logged one by one (:func:`summary`, and periodically :func:`emit_summary`,
  every ``YOSAI_AUDIT_SUMMARY_SECONDS``).

Every event carries ``time`` (UTC, ISO 8601), ``pid``, ``process`` and ``host``. This module is
imported by the manager, so it imports nothing heavy: ``json`` and ``logging`` only when an event is
emitted.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from .. import forksafe
from ..envvars import env_seconds
from .sink import AUDIT_LOG_VARIABLE, AuditSink

__all__ = [
    "AUDIT_LOGGER",
    "AUDIT_LOG_VARIABLE",
    "MAX_COUNTED_KEYS",
    "OTHER_KEYS",
    "SCHEMA",
    "SUMMARY_SECONDS_VARIABLE",
    "HitSource",
    "bump",
    "count_write_failure",
    "emit_access",
    "emit_operation",
    "emit_summary",
    "ensure_summary_timer",
    "register_hit_source",
    "start_summary_timer",
    "summary",
    "summary_seconds",
    "utc_iso",
    "write_failures",
]

#: The logger every event goes to.
AUDIT_LOGGER: Final = "yosai_secrets.audit"
#: The version of the event format (the ``schema`` field of every event).
SCHEMA: Final = 1
#: Seconds between two summary events of a process (0: none); default 300.
SUMMARY_SECONDS_VARIABLE: Final = "YOSAI_AUDIT_SUMMARY_SECONDS"
DEFAULT_SUMMARY_SECONDS: Final = 300.0


class HitSource(Protocol):
    """Something that counts cache hits per key (a manager): the summary asks it for them."""

    def audit_hits(self) -> Mapping[str, int]:
        """Cache hits per key since this object was created."""
        ...


def utc_iso(epoch_seconds: float | None = None) -> str:
    """``2026-11-29T21:30:00.123456Z`` for ``epoch_seconds`` (default: now)."""
    now = time.time() if epoch_seconds is None else epoch_seconds
    whole = int(now)
    micros = round((now - whole) * 1_000_000)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


class _Identity:
    """This process as events name it; computed once per process (a fork gets its own)."""

    def __init__(self) -> None:
        self.pid = -1
        self.fields: dict[str, Any] = {}

    def current(self) -> dict[str, Any]:
        pid = os.getpid()
        if pid != self.pid:
            self.fields = {"pid": pid, "process": _process_name(), "host": os.uname().nodename}
            self.pid = pid
        return self.fields


def _process_name() -> str:
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if program in ("", "-c", "-m", "__main__.py"):
        program = os.path.basename(sys.executable) or "python"
    return program


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # no login name (a container with an arbitrary uid)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


#: The most distinct keys counted one by one; the others are counted together under OTHER_KEYS,
#: so that a process reading ever new keys keeps bounded tables (and bounded summaries).
MAX_COUNTED_KEYS: Final = 10_000
OTHER_KEYS: Final = "(other keys)"


def bump(table: dict[str, int], key: str, n: int = 1) -> None:
    """Add ``n`` to ``key``'s count in ``table``, or to OTHER_KEYS once the table is full."""
    if key not in table and len(table) >= MAX_COUNTED_KEYS:
        key = OTHER_KEYS
    table[key] = table.get(key, 0) + n


class _Tally:
    """Per-key counts of this process: backend reads and errors, and the hit sources."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reads: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.sources: weakref.WeakSet[HitSource] = weakref.WeakSet()
        self.reported: dict[str, tuple[int, int, int]] = {}  # what the last summary event said
        self.reported_failures = 0
        self.last_summary = time.time()

    def count(self, key: str, ok: bool) -> None:
        with self.lock:
            bump(self.reads if ok else self.errors, key)

    def per_key(self) -> dict[str, dict[str, int]]:
        hits: dict[str, int] = {}
        for source in list(self.sources):
            for key, n in source.audit_hits().items():
                bump(hits, key, n)
        with self.lock:
            keys = sorted(set(self.reads) | set(self.errors) | set(hits))
            return {
                key: {
                    "reads": self.reads.get(key, 0),
                    "errors": self.errors.get(key, 0),
                    "hits": hits.get(key, 0),
                }
                for key in keys
            }

    def after_fork_in_child(self) -> None:
        # The child's counts start at zero: the parent reports its own.
        self.lock = threading.Lock()
        self.reads, self.errors, self.reported = {}, {}, {}
        self.reported_failures = 0
        self.last_summary = time.time()


class _SummaryTimer:
    """A daemon thread emitting a summary event every ``interval`` seconds; restarted after fork."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.interval = 0.0

    def ensure(self, interval: float) -> None:
        if self.thread is not None and self.interval == interval:
            return
        with self.lock:
            old, self.thread = self.thread, None
            self.stop.set()
            self.stop = threading.Event()
            self.interval = interval
            if interval > 0:
                self.thread = threading.Thread(
                    target=self._run,
                    args=(self.stop, interval),
                    name="yosai-secrets-audit-summary",
                    daemon=True,
                )
                self.thread.start()
        if old is not None and old is not threading.current_thread():
            old.join(timeout=1.0)  # it wakes at once; then nothing of it is left running

    @staticmethod
    def _run(stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            try:
                emit_summary()
            except Exception:  # a summary must never kill the timer
                _STATE.sink.write_failures += 1

    def after_fork_in_child(self) -> None:
        # The parent's thread was not copied: start one here (if the parent had one).
        interval, self.thread, self.lock = self.interval, None, threading.Lock()
        self.stop = threading.Event()  # the parent's may be mid-wait, its lock held, at the fork
        self.interval = 0.0
        if interval > 0:
            self.ensure(interval)


class _State:
    def __init__(self) -> None:
        self.identity = _Identity()
        self.sink = AuditSink()
        self.tally = _Tally()
        self.timer = _SummaryTimer()
        forksafe.register(self.tally)
        forksafe.register(self.timer)


_STATE: Final = _State()


def emit_access(
    key: str,
    *,
    backend: str,
    location: str,
    outcome: str = "ok",
    version: str | int | None = None,
    also: Sequence[str] = (),
) -> None:
    """Record one read that reached a backend: ``outcome`` is ``ok`` or the error's type name.

    ``location`` is where the value was read (as error messages show it: backend, address, path,
    variable or file; credentials in a URL are stripped here). ``also`` names the other keys this
    one read served (keys of one path read together); the event then lists all of them in
    ``keys``. Never raises.
    """
    ok = outcome == "ok"
    for name in (key, *also):
        _STATE.tally.count(name, ok)
    record: dict[str, Any] = {
        "event": "read",
        "key": key,
        **({"keys": [key, *also]} if also else {}),
        "backend": backend,
        "location": _strip_credentials(location),
        "outcome": outcome,
        "version": version,
    }
    _emit(record, 20)  # INFO even when failed: the caller gets the error itself


def emit_operation(
    action: str,
    *,
    keys: Sequence[str],
    reason: str | None,
    outcome: str,
    details: Mapping[str, object] | None = None,
) -> None:
    """Record an operation (a rotation, an incident step...): who ran it (user, host, pid), why.

    Args:
        action: what was done (``rotate``, ``rotate-finish``, ``incident.revoke-token``...).
        keys: the secrets it concerned, by name.
        reason: why (the operator's ``--reason``), or None.
        outcome: how it ended (``done``, ``failed``, ``skipped``...).
        details: names, counts, versions: never a value.
    """
    record: dict[str, Any] = {
        "event": "operation",
        "action": action,
        "keys": list(keys),
        "reason": reason,
        "outcome": outcome,
        "user": _user(),
        "details": dict(details or {}),
    }
    _emit(record, 20)


def register_hit_source(source: HitSource) -> None:
    """Have :func:`summary` include ``source``'s per-key cache hits (held weakly)."""
    with _STATE.tally.lock:
        _STATE.tally.sources.add(source)


def summary() -> dict[str, Any]:
    """This process's audit counts since it started: per key, backend reads, errors, cache hits.

    Also ``audit_write_failures``: the events that could not be written to ``YOSAI_AUDIT_LOG``.
    """
    record: dict[str, Any] = {
        "event": "summary",
        "time": utc_iso(),
        **_STATE.identity.current(),
        "keys": _STATE.tally.per_key(),
        "audit_write_failures": _STATE.sink.write_failures,
    }
    return record


def emit_summary(*, force: bool = False) -> dict[str, Any] | None:
    """Emit a summary event of the counts since the previous one (per key), and return it.

    Nothing is emitted (None is returned) when nothing changed, unless ``force``.
    """
    tally = _STATE.tally
    now = time.time()
    delta: dict[str, dict[str, int]] = {}
    for key, counts in tally.per_key().items():
        current = (counts["reads"], counts["errors"], counts["hits"])
        before = tally.reported.get(key, (0, 0, 0))
        if current != before:
            tally.reported[key] = current
            names = ("reads", "errors", "hits")
            delta[key] = {
                name: max(0, now_n - was_n)
                for name, now_n, was_n in zip(names, current, before, strict=True)
            }
    failures = _STATE.sink.write_failures
    if not delta and failures == tally.reported_failures and not force:
        return None
    record: dict[str, Any] = {
        "event": "summary",
        "period_seconds": round(now - tally.last_summary, 3),
        "keys": delta,
        "audit_write_failures": failures - tally.reported_failures,
    }
    tally.reported_failures, tally.last_summary = failures, now
    _emit(record, 20)
    return record


def summary_seconds(environ: Mapping[str, str] | None = None) -> float:
    """``YOSAI_AUDIT_SUMMARY_SECONDS`` (default 300; 0: no periodic summary).

    Raises:
        ConfigurationError: the variable is not a number of seconds.
    """
    env = os.environ if environ is None else environ
    return env_seconds(env, SUMMARY_SECONDS_VARIABLE, DEFAULT_SUMMARY_SECONDS)


def start_summary_timer(interval_seconds: float) -> None:
    """Emit a summary every ``interval_seconds`` from a daemon thread (0: stop it).

    One timer per process: a later call with another interval replaces it; a forked child
    starts its own.
    """
    _STATE.timer.ensure(interval_seconds)


def ensure_summary_timer(environ: Mapping[str, str] | None = None) -> None:
    """Run the periodic summary every ``YOSAI_AUDIT_SUMMARY_SECONDS`` (default 300; 0: stop it).

    Raises:
        ConfigurationError: the variable is not a number of seconds.
    """
    start_summary_timer(summary_seconds(environ))


def count_write_failure() -> None:
    """Count an event that could not be recorded (the summary reports it)."""
    _STATE.sink.write_failures += 1


def write_failures() -> int:
    """How many events could not be written to ``YOSAI_AUDIT_LOG`` in this process."""
    return _STATE.sink.write_failures


# -- internals ---------------------------------------------------------------------------------


def _emit(record: dict[str, Any], level: int) -> None:
    """Stamp ``record`` and send it to the logger and the file; never raises."""
    stamped = {"schema": SCHEMA, "time": utc_iso(), **_STATE.identity.current(), **record}
    try:
        import json
        import logging

        logger = logging.getLogger(AUDIT_LOGGER)
        if logger.isEnabledFor(level):
            logger.log(level, "audit %s", _headline(stamped), extra={"audit": stamped})
        line = json.dumps(stamped, separators=(",", ":"), default=str, ensure_ascii=False)
    except Exception:  # a broken handler or an odd detail must not break the read
        _STATE.sink.write_failures += 1
        return
    _STATE.sink.write((line + "\n").encode("utf-8"))


def _headline(event: Mapping[str, Any]) -> str:
    kind = event.get("event")
    if kind == "read":
        return f"read {event['key']} from {event['location']}: {event['outcome']}"
    if kind == "operation":
        keys = ", ".join(event["keys"]) or "-"
        return f"{event['action']} of {keys} by {event['user']}: {event['outcome']}"
    return f"summary of {len(event.get('keys', {}))} key(s)"


def _strip_credentials(location: str) -> str:
    """Drop ``user:password@`` from any URL in ``location``."""
    if "@" not in location:
        return location
    import re

    return re.sub(r"(\w+://)[^/@\s]*@", r"\1", location)
