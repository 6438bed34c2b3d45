"""Reading audit logs: our JSON-lines events and OpenBao/Vault audit-device logs, as one stream.

Both formats are JSON lines; a line is recognised by its shape, so one directory may mix them:

* ours (:mod:`.events`): ``{"schema": 1, "event": "read" | "operation" | "summary", ...}``;
* an OpenBao/Vault file audit device: ``{"type": "request" | "response", "auth": {...},
  "request": {"path", "operation", "remote_address", ...}, "response": {...}, "error": ...}``.
  Only ``response`` entries are used (each request has one, with its outcome); values in it are
  HMACs, and the token is known by its (HMAC'd) accessor and display name.

Everything becomes an :class:`Access` (one read or request), a :class:`Rotation` (a new version
of a secret: our rotation/incident events, or a KV write answered with a version) or hit counts.
Files ending in ``.gz`` are read through gzip. A line that is neither format is counted, not fatal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

__all__ = ["Access", "LogStream", "Rotation", "parse_time", "read_logs"]

#: Our outcomes that mean "refused" (as opposed to missing or down).
_DENIED_OUTCOMES = frozenset({"BackendPermissionError", "BackendAuthError"})
_DENIED_TEXT = re.compile(r"permission denied|invalid token|bad token|token.*expired", re.I)
_FRACTION = re.compile(r"\.(\d+)")
#: Outcomes of our rotation and incident events after which the keys hold new values.
_NEW_VERSION_OUTCOMES = frozenset({"done", "ok", "rotated", "finished"})


@dataclass(frozen=True, slots=True)
class Access:
    """One read (ours) or one request (Vault's), by name, never with a value."""

    time: datetime
    key: str  # our key name, or the Vault path
    origin: str  # "yosai" or "vault"
    operation: str  # "read" for ours; Vault's operation (read, list, create, update...)
    outcome: str  # "ok", or the error (our error type, Vault's error text)
    denied: bool
    host: str | None = None  # ours: the host; Vault: the remote address
    process: str | None = None  # ours: the process name; Vault: the token's display name
    token: str | None = None  # Vault: the token's accessor (an HMAC by default)
    version: str | int | None = None
    path: str | None = None  # the backend path (ours: from the location; Vault: the path)
    keys: tuple[str, ...] = ()  # every key this read served (ours: keys of one path together)
    where: str = ""  # file:line

    @property
    def source(self) -> str:
        """Who read: ``process@host`` for ours, ``display_name@address`` for Vault."""
        return f"{self.process or '?'}@{self.host or '?'}"

    @property
    def is_secret_read(self) -> bool:
        """A read of a secret (not a Vault system or login path)."""
        if self.origin == "yosai":
            return True
        return self.operation == "read" and not self.key.startswith(("sys/", "auth/"))


@dataclass(frozen=True, slots=True)
class Rotation:
    """A secret got a new version at ``time`` (by key name or Vault path)."""

    time: datetime
    key: str
    version: str | int | None
    origin: str
    where: str = ""


@dataclass
class LogStream:
    """Everything read from the logs, in time order once :meth:`sort` ran."""

    accesses: list[Access] = field(default_factory=list)
    rotations: list[Rotation] = field(default_factory=list)
    hits: list[tuple[datetime, str, int]] = field(default_factory=list)  # (time, key, count)
    files: list[str] = field(default_factory=list)
    lines: int = 0
    unrecognised: int = 0

    def sort(self) -> None:
        """Order every list by time."""
        self.accesses.sort(key=lambda a: a.time)
        self.rotations.sort(key=lambda r: r.time)
        self.hits.sort(key=lambda h: h[0])


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (``Z`` or an offset; nanoseconds allowed) as an aware UTC datetime.

    Raises:
        ValueError: not such a time.
    """
    text = text.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Vault writes nanoseconds; datetime takes at most microseconds.
    text = _FRACTION.sub(lambda m: "." + m[1][:6].ljust(6, "0"), text, count=1)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def read_logs(paths: Iterable[str | Path]) -> LogStream:
    """Read every file (directories: every file below them, in name order).

    Raises:
        ConfigurationError: a path does not exist or cannot be read (the message names it).
    """
    stream = LogStream()
    for path in _files(paths):
        stream.files.append(str(path))
        try:
            for number, line in enumerate(_lines(path), start=1):
                stream.lines += 1
                _take(stream, line, f"{path}:{number}")
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigurationError(
                f"cannot read the audit log {path}: {reason}; check the path and its permissions"
            ) from None
    stream.sort()
    return stream


# -- internals ---------------------------------------------------------------------------------


def _files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file())
            yield from found
        elif path.exists():
            yield path
        else:
            raise ConfigurationError(
                f"the audit log {path} does not exist; give a file or a directory of logs "
                "(YOSAI_AUDIT_LOG, or the file_path of an OpenBao/Vault file audit device)"
            )


def _lines(path: Path) -> Iterator[str]:
    if path.suffix == ".gz":
        import gzip

        with gzip.open(path, "rt", encoding="utf-8") as handle:
            yield from handle
    else:
        with path.open(encoding="utf-8") as handle:
            yield from handle


def _take(stream: LogStream, line: str, where: str) -> None:
    line = line.strip()
    if not line:
        return
    try:
        record = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError("not an object")
        if "schema" in record and "event" in record:
            _ours(stream, record, where)
        elif record.get("type") in ("request", "response") and isinstance(
            record.get("request"), dict
        ):
            _vault(stream, record, where)
        else:
            stream.unrecognised += 1
    except (ValueError, KeyError, TypeError, AttributeError):
        stream.unrecognised += 1


def _ours(stream: LogStream, record: Mapping[str, Any], where: str) -> None:
    kind = record["event"]
    when = parse_time(record["time"])
    if kind == "read":
        outcome = str(record.get("outcome") or "ok")
        location = str(record.get("location") or "")
        keys = tuple(str(k) for k in record.get("keys") or [record["key"]])
        stream.accesses.append(
            Access(
                time=when,
                key=str(record["key"]),
                origin="yosai",
                operation="read",
                outcome=outcome,
                denied=outcome in _DENIED_OUTCOMES,
                host=record.get("host"),
                process=record.get("process"),
                version=record.get("version"),
                path=location.rsplit(" ", 1)[-1] if record.get("backend") == "vault" else None,
                keys=keys,
                where=where,
            )
        )
    elif kind == "operation":
        _our_operation(stream, record, when, where)
    elif kind == "summary":
        for key, counts in (record.get("keys") or {}).items():
            if isinstance(counts, Mapping) and counts.get("hits"):
                stream.hits.append((when, str(key), int(counts["hits"])))


def _our_operation(
    stream: LogStream, record: Mapping[str, Any], when: datetime, where: str
) -> None:
    """A rotation or incident that got through gives each of its keys a new version.

    ``details.versions`` (key -> version) or ``details.version`` says which; without either the
    rotation is still listed, but old-version reads cannot be told from it.
    """
    action = str(record.get("action") or "")
    if action == "rotate-abort" or not action.startswith(("rotate", "incident")):
        return
    if record.get("outcome") not in _NEW_VERSION_OUTCOMES:
        return
    details = record.get("details") or {}
    versions = details.get("versions") if isinstance(details, Mapping) else None
    for key in record.get("keys") or []:
        version = versions.get(key) if isinstance(versions, Mapping) else None
        if version is None and isinstance(details, Mapping):
            version = details.get("version")
        stream.rotations.append(Rotation(when, str(key), version, "yosai", where))


def _vault(stream: LogStream, record: Mapping[str, Any], where: str) -> None:
    if record["type"] != "response":
        return  # each request has a response entry, with its outcome: count that one only
    request = record["request"]
    auth = record.get("auth") or {}
    error = record.get("error")
    path = str(request.get("path") or "")
    operation = str(request.get("operation") or "")
    data = (record.get("response") or {}).get("data") or {}
    version = None
    if isinstance(data, Mapping):
        metadata = data.get("metadata")
        version = metadata.get("version") if isinstance(metadata, Mapping) else None
        if operation in ("create", "update") and "/data/" in path and not error:
            written = data.get("version")
            if isinstance(written, int):
                when = parse_time(record["time"])
                stream.rotations.append(Rotation(when, path, written, "vault", where))
    stream.accesses.append(
        Access(
            time=parse_time(record["time"]),
            key=path,
            origin="vault",
            operation=operation,
            outcome="ok" if not error else _one_line(str(error)),
            denied=bool(error) and bool(_DENIED_TEXT.search(str(error))),
            host=request.get("remote_address"),
            process=auth.get("display_name"),
            token=auth.get("accessor") or request.get("client_token_accessor"),
            version=version if isinstance(version, int | str) else None,
            path=path,
            keys=(path,),
            where=where,
        )
    )


def _one_line(error: str) -> str:
    """Vault's multi-error text (``1 error occurred:\\n\\t* permission denied``) on one line."""
    parts = [p.strip(" *\t") for p in error.splitlines() if p.strip(" *\t")]
    if len(parts) > 1 and parts[0].endswith("occurred:"):
        parts = parts[1:]
    return "; ".join(parts)
