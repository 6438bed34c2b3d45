"""The four rules of :func:`~.analyze.summarize`, each a generator of :class:`Flag`.

* ``denied-burst``: ``burst_count`` denied requests from one source within ``burst_seconds``
  (a source is ``process@host`` for our events, the remote address for Vault's);
* ``new-reader``: a read by a host, or a process on a host, not seen in the baseline;
* ``read-after-rotation``: a read returning a version older than one a rotation (ours) or a KV
  write (Vault's) made before it;
* ``token-new-address``: a Vault token (by accessor) used from an address it had not used before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .logs import Access, Rotation

__all__ = [
    "Flag",
    "Rules",
    "denied_bursts",
    "iso",
    "new_readers",
    "reads_after_rotation",
    "token_new_address",
    "within",
]


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
            "time": iso(self.time),
            "source": self.source,
            "key": self.key,
            "reason": self.reason,
            "where": self.where,
        }


def denied_bursts(window: list[Access], rules: Rules) -> Iterator[Flag]:
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


def new_readers(
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
        if access.time < (baseline_end or access.time) or not within(access.time, start):
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


def reads_after_rotation(
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
                    f"at {iso(newer.time)} ({newer.origin})",
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


def token_new_address(accesses: list[Access], start: datetime | None) -> Iterator[Flag]:
    """A Vault token seen before from other addresses, used in the window from a new one."""
    seen: dict[str, set[str]] = {}
    for access in accesses:
        if access.origin != "vault" or not access.token or not access.host:
            continue
        known = seen.setdefault(access.token, set())
        if known and access.host not in known and within(access.time, start):
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


def within(when: datetime, start: datetime | None) -> bool:
    """Whether ``when`` is in the window starting at ``start`` (None: the whole logs)."""
    return start is None or when >= start


def iso(when: datetime | None) -> str | None:
    """``2026-11-29T10:00:00.123456Z`` (None stays None)."""
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def _short(token: str) -> str:
    return token.removeprefix("hmac-sha256:")[:12]
