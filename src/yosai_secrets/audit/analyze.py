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
time span. With no read in the baseline, the two "new" rules cannot tell anything and are not
applied (the report says so). Nothing here ever holds a value: logs hold names and HMACs.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .logs import Access, LogStream, Rotation, parse_time, read_logs

__all__ = ["AuditReport", "Flag", "KeyCounts", "Rules", "SourceCounts", "parse_since", "summarize"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Rules:
    """Thresholds of the rules."""

    burst_count: int = 5
    burst_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class Flag:
    """One thing that looks wrong: its rule, when, who, which secret, and why in words."""

    kind: str
    time: datetime
    source: str
    key: str
    reason: str
    where: str = ""  # the log file and line of the access that raised it

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "kind": self.kind,
            "time": _iso(self.time),
            "source": self.source,
            "key": self.key,
            "reason": self.reason,
            "where": self.where,
        }


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
            "window": {"start": _iso(self.window_start), "end": _iso(self.window_end)},
            "baseline_end": _iso(self.baseline_end),
            "lines": self.lines,
            "unrecognised_lines": self.unrecognised,
            "keys": {
                name: {**_counts(c), "sources": sorted(c.sources)} for name, c in self.keys.items()
            },
            "sources": {
                name: {**_counts(c), "keys": sorted(c.keys)} for name, c in self.sources.items()
            },
            "rotations": [
                {"time": _iso(r.time), "key": r.key, "version": r.version, "origin": r.origin}
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
        r for r in stream.rotations if (names is None or r.key in names) and _in(r.time, start)
    ]
    rules = rules or Rules()
    report.flags.extend(_denied_bursts(window, rules))
    report.flags.extend(_new_readers(accesses, baseline_end, start, report.notes))
    report.flags.extend(_reads_after_rotation(window, stream.rotations, _path_aliases(stream)))
    report.flags.extend(_token_new_address(accesses, start))
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
        if (names is None or name in names) and _in(when, start):
            report.keys.setdefault(name, KeyCounts()).hits += hits


def _tally(counts: KeyCounts | SourceCounts, access: Access) -> None:
    if access.denied:
        counts.denied += 1
    elif access.outcome != "ok":
        counts.errors += 1
    else:
        counts.reads += 1


# -- the rules ---------------------------------------------------------------------------------


def _denied_bursts(window: list[Access], rules: Rules) -> Iterator[Flag]:
    """``burst_count`` denials from one source within ``burst_seconds``: one flag per burst."""
    by_source: dict[str, list[Access]] = {}
    for access in window:
        if access.denied:
            origin = access.host if access.origin == "vault" else access.source
            by_source.setdefault(origin or "?", []).append(access)
    span = timedelta(seconds=rules.burst_seconds)
    for source, denials in by_source.items():
        recent: deque[Access] = deque()
        burst: list[Access] = []
        for access in denials:
            if burst and access.time - burst[-1].time > span:
                yield _burst_flag(source, burst, rules)
                burst = []
            recent.append(access)
            while access.time - recent[0].time > span:
                recent.popleft()
            if burst:
                burst.append(access)
            elif len(recent) >= rules.burst_count:
                burst = list(recent)
        if burst:
            yield _burst_flag(source, burst, rules)


def _burst_flag(source: str, burst: list[Access], rules: Rules) -> Flag:
    seconds = (burst[-1].time - burst[0].time).total_seconds()
    keys = sorted({a.key for a in burst})
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    return Flag(
        kind="denied-burst",
        time=burst[0].time,
        source=source,
        key=keys[0] if len(keys) == 1 else f"{len(keys)} keys",
        reason=(
            f"{len(burst)} denied requests in {seconds:.0f} s (threshold {rules.burst_count} "
            f"within {rules.burst_seconds:g} s): {shown}"
        ),
        where=burst[0].where,
    )


def _new_readers(
    accesses: list[Access], baseline_end: datetime | None, start: datetime | None, notes: list[str]
) -> Iterator[Flag]:
    """The first read in the window by a host, or a process on a host, the baseline never saw."""
    reads = [a for a in accesses if a.is_secret_read]
    baseline = [a for a in reads if baseline_end is not None and a.time < baseline_end]
    if not baseline:
        if reads:
            notes.append("no read before the window: new readers cannot be told apart")
        return
    hosts = {(a.origin, a.host) for a in baseline}
    pairs = {(a.origin, a.host, a.process) for a in baseline}
    for access in reads:
        if access.time < (baseline_end or access.time) or not _in(access.time, start):
            continue
        if (access.origin, access.host) not in hosts:
            what = f"host {access.host or '?'} never read a secret before"
        elif (access.origin, access.host, access.process) not in pairs:
            who = "token" if access.origin == "vault" else "process"
            what = f"{who} {access.process or '?'} never read a secret from {access.host} before"
        else:
            continue
        hosts.add((access.origin, access.host))
        pairs.add((access.origin, access.host, access.process))
        yield Flag("new-reader", access.time, access.source, access.key, what, access.where)


def _reads_after_rotation(
    window: list[Access], rotations: list[Rotation], paths: dict[str, set[str]]
) -> Iterator[Flag]:
    """A read returning a version older than one made before it (by a rotation or a KV write)."""
    by_key: dict[str, list[Rotation]] = {}
    for rotation in rotations:
        for name in {rotation.key} | paths.get(rotation.key, set()):
            by_key.setdefault(name, []).append(rotation)
    for access in window:
        if access.version is None or access.outcome != "ok" or not access.is_secret_read:
            continue
        for name in {*access.keys, access.key, access.path or ""}:
            newer = _newer_rotation(by_key.get(name, []), access)
            if newer is not None:
                yield Flag(
                    "read-after-rotation",
                    access.time,
                    access.source,
                    access.key,
                    f"read version {access.version} after version {newer.version} was made "
                    f"at {_iso(newer.time)} ({newer.origin})",
                    access.where,
                )
                break


def _newer_rotation(rotations: list[Rotation], access: Access) -> Rotation | None:
    latest = None
    for rotation in rotations:
        if rotation.time <= access.time and rotation.version is not None:
            latest = rotation
    if latest is None or latest.version == access.version:
        return None
    if isinstance(latest.version, int) and isinstance(access.version, int):
        return latest if access.version < latest.version else None
    return latest  # version ids (AWS): any other id than the rotated one is an old one


def _token_new_address(accesses: list[Access], start: datetime | None) -> Iterator[Flag]:
    """A Vault token seen before from other addresses, used in the window from a new one."""
    seen: dict[str, set[str]] = {}
    for access in accesses:
        if access.origin != "vault" or not access.token or not access.host:
            continue
        known = seen.setdefault(access.token, set())
        if known and access.host not in known and _in(access.time, start):
            yield Flag(
                "token-new-address",
                access.time,
                access.source,
                access.key,
                f"token {access.process or '?'} (accessor {_short(access.token)}) used from "
                f"{access.host}, before only from {', '.join(sorted(known))}",
                access.where,
            )
        known.add(access.host)


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


def _in(when: datetime, start: datetime | None) -> bool:
    return start is None or when >= start


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def _short(token: str) -> str:
    return token.removeprefix("hmac-sha256:")[:12]


def _counts(counts: KeyCounts | SourceCounts) -> dict[str, int]:
    found = {"reads": counts.reads, "denied": counts.denied, "errors": counts.errors}
    if isinstance(counts, KeyCounts):
        found["hits"] = counts.hits
    return found
