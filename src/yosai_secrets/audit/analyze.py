"""What the audit logs say: counts per key and per source, and what looks wrong.

:func:`summarize` reads our audit events and OpenBao/Vault audit-device logs (:mod:`.logs`) and
applies four rules over a window of time (``since`` to the end of the logs):

* ``denied-burst``: ``burst_count`` denied requests from one source within ``burst_seconds``
  (a source is ``process@host`` for our events, the remote address for Vault's);
* ``new-reader``: a read by a host, or a process on a host, not seen in the baseline;
* ``read-after-rotation``: a read returning a version older than one a rotation (ours) or a KV
  write (Vault's) made before it;
* ``token-new-address``: a Vault token (by accessor) used from an address it had not used before.

The baseline is everything before ``since`` or, without ``since``, the first half of the logs'
time span. With no read in the baseline, the new-reader rule cannot tell anything and is not
applied (the report says so). Nothing here ever holds a value: logs hold names and HMACs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .logs import Access, LogStream, Rotation, parse_time, read_logs
from .rules import (
    Flag,
    Rules,
    denied_bursts,
    iso,
    new_readers,
    reads_after_rotation,
    token_new_address,
    within,
)

__all__ = ["AuditReport", "Flag", "KeyCounts", "Rules", "SourceCounts", "parse_since", "summarize"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass
class KeyCounts:
    """What happened to one secret (a key name, or a Vault path) in the window."""

    reads: int = 0
    denied: int = 0
    errors: int = 0
    hits: int = 0
    sources: set[str] = field(default_factory=set)


@dataclass
class SourceCounts:
    """What one source (``process@host``, ``display_name@address``) did in the window."""

    reads: int = 0
    denied: int = 0
    errors: int = 0
    keys: set[str] = field(default_factory=set)


@dataclass
class AuditReport:
    """The result of :func:`summarize`: counts, flags and what was read."""

    files: list[str]
    window_start: datetime | None
    window_end: datetime | None
    baseline_end: datetime | None
    key: str | None
    lines: int
    unrecognised: int
    keys: dict[str, KeyCounts] = field(default_factory=dict)
    sources: dict[str, SourceCounts] = field(default_factory=dict)
    flags: list[Flag] = field(default_factory=list)
    rotations: list[Rotation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        """True when at least one rule fired."""
        return bool(self.flags)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``yosai-secrets audit --json``)."""
        return {
            "files": self.files,
            "key": self.key,
            "window": {"start": iso(self.window_start), "end": iso(self.window_end)},
            "baseline_end": iso(self.baseline_end),
            "lines": self.lines,
            "unrecognised_lines": self.unrecognised,
            "keys": {
                name: {**_counts(c), "sources": sorted(c.sources)} for name, c in self.keys.items()
            },
            "sources": {
                name: {**_counts(c), "keys": sorted(c.keys)} for name, c in self.sources.items()
            },
            "rotations": [
                {"time": iso(r.time), "key": r.key, "version": r.version, "origin": r.origin}
                for r in self.rotations
            ],
            "flags": [f.to_dict() for f in self.flags],
            "notes": self.notes,
        }


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``7d``, ``24h``, ``30m``, ``90s``, ``2w`` (ago), or an ISO 8601 time, as UTC.

    Raises:
        ConfigurationError: neither form.
    """
    match = _DURATION.match(text)
    if match:
        seconds = float(match[1]) * _UNIT_SECONDS[match[2].lower()]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        return parse_time(text)
    except ValueError:
        raise ConfigurationError(
            f"--since {text!r} is neither a duration (7d, 24h, 30m, 90s) nor an ISO 8601 time "
            "(2026-11-29T10:00:00Z)"
        ) from None


def summarize(
    paths: Iterable[str | Path],
    *,
    since: datetime | str | None = None,
    key: str | None = None,
    rules: Rules | None = None,
) -> AuditReport:
    """Read the audit logs at ``paths`` (files or directories) and report on them.

    Args:
        paths: our ``YOSAI_AUDIT_LOG`` files, OpenBao/Vault file audit-device logs, directories.
        since: the start of the window (a datetime, or text for :func:`parse_since`); default:
            the whole logs, with their first half as the baseline.
        key: only this secret (a key name or a Vault path; a key's Vault path, as our read
            events name it, is matched too).
        rules: thresholds (default :class:`Rules`).

    Raises:
        ConfigurationError: a path is missing or unreadable, or ``since`` is malformed.
    """
    start = parse_since(since) if isinstance(since, str) else since
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)  # a naive time is taken as UTC, as the logs are
    stream = read_logs(paths)
    names = _aliases(stream, key) if key else None
    accesses = [a for a in stream.accesses if names is None or _touches(a, names)]
    report = AuditReport(
        files=stream.files,
        window_start=start,
        window_end=stream.accesses[-1].time if stream.accesses else None,
        baseline_end=None,
        key=key,
        lines=stream.lines,
        unrecognised=stream.unrecognised,
    )
    if stream.unrecognised:
        report.notes.append(f"{stream.unrecognised} line(s) were neither format and were skipped")
    baseline_end = start or _midpoint(stream.accesses)
    report.baseline_end = baseline_end
    window = [a for a in accesses if start is None or a.time >= start]
    _count(report, window, stream, names, start)
    report.rotations = [
        r for r in stream.rotations if (names is None or r.key in names) and within(r.time, start)
    ]
    rules = rules or Rules()
    report.flags.extend(denied_bursts(window, rules))
    report.flags.extend(new_readers(accesses, baseline_end, start, report.notes))
    report.flags.extend(reads_after_rotation(window, stream.rotations, _path_aliases(stream)))
    report.flags.extend(token_new_address(accesses, start))
    report.flags.sort(key=lambda f: (f.time, f.kind))
    return report


# -- counting ----------------------------------------------------------------------------------


def _count(
    report: AuditReport,
    window: list[Access],
    stream: LogStream,
    names: set[str] | None,
    start: datetime | None,
) -> None:
    for access in window:
        if not (access.is_secret_read or access.denied):
            continue
        source = report.sources.setdefault(access.source, SourceCounts())
        for name in access.keys or (access.key,):
            if names is not None and name not in names and access.path not in names:
                continue
            counts = report.keys.setdefault(name, KeyCounts())
            counts.sources.add(access.source)
            source.keys.add(name)
            _tally(counts, access)
        _tally(source, access)
    for when, name, hits in stream.hits:
        if (names is None or name in names) and within(when, start):
            report.keys.setdefault(name, KeyCounts()).hits += hits


def _tally(counts: KeyCounts | SourceCounts, access: Access) -> None:
    if access.denied:
        counts.denied += 1
    elif access.outcome != "ok":
        counts.errors += 1
    else:
        counts.reads += 1


# -- the rules ---------------------------------------------------------------------------------


# -- helpers -----------------------------------------------------------------------------------


def _aliases(stream: LogStream, key: str) -> set[str]:
    """``key`` and the Vault paths our read events of it name."""
    names = {key}
    for access in stream.accesses:
        if access.origin == "yosai" and key in access.keys and access.path:
            names.add(access.path)
    return names


def _path_aliases(stream: LogStream) -> dict[str, set[str]]:
    """Key name -> the Vault paths it is read from (so a rotation of a key covers its path)."""
    found: dict[str, set[str]] = {}
    for access in stream.accesses:
        if access.origin == "yosai" and access.path:
            for name in access.keys:
                found.setdefault(name, set()).add(access.path)
    return found


def _touches(access: Access, names: set[str]) -> bool:
    return access.key in names or access.path in names or not names.isdisjoint(access.keys)


def _midpoint(accesses: list[Access]) -> datetime | None:
    if not accesses:
        return None
    first, last = accesses[0].time, accesses[-1].time
    return first + (last - first) / 2


def _counts(counts: KeyCounts | SourceCounts) -> dict[str, int]:
    found = {"reads": counts.reads, "denied": counts.denied, "errors": counts.errors}
    if isinstance(counts, KeyCounts):
        found["hits"] = counts.hits
    return found
