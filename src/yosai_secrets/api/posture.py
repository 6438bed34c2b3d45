"""Secret posture: for each secret, where it comes from, its state and its age — never its value.

Shared by ``GET /api/secrets``, ``GET /readyz`` and the posture page. A secret's state is one of:

- ``missing``: it cannot be resolved now (not set, or its backend fails with nothing cached);
- ``stale-served``: its backend fails and the cache serves the last good value;
- ``overdue``: its last rotation is older than the policy (``ROTATION_MAX_AGE_DAYS``, default 90);
- ``ok``: none of those.

When the secret was last rotated comes from a *rotation info* provider: the rotation module's
records in the secret store (Vault KV v2 metadata, the date of AWS's current version) where
``SECRET_BACKEND`` names one, else the modification time of the file it is read from (Docker
secret, ``NAME_FILE``, development file), else unknown.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from ..environments import REQUIRED_SECRETS, required_secrets
from ..errors import ConfigurationError, SecretNotFoundError, YosaiSecretsError
from ..manager import SecretManager
from ..references import BACKEND_OF_SCHEME

__all__ = [
    "DEFAULT_MAX_AGE_DAYS",
    "RotationInfo",
    "RotationInfoProvider",
    "SecretPosture",
    "StoreRotationInfo",
    "file_rotation_info",
    "max_age_days",
    "posture",
    "unresolvable",
]

_log = logging.getLogger("yosai_secrets.api.posture")

DEFAULT_MAX_AGE_DAYS: Final = 90  # the rotation policy's default (rotation.policy)
_SECONDS_PER_DAY: Final = 86400.0

# What the env backend's describe() says for a file source; the file's mtime is its last change.
_FILE_SOURCE: Final = re.compile(r"^(?:\w+_FILE=|Docker secret |development secret file )(.+)$")


@dataclass(frozen=True, slots=True)
class RotationInfo:
    """What is known of a secret's rotation."""

    last_rotated: datetime | None = None
    version: str | None = None


#: Given a secret's name and the manager, say what is known of its rotation (or None).
RotationInfoProvider = Callable[[str, SecretManager], RotationInfo | None]


@dataclass(frozen=True, slots=True)
class SecretPosture:
    """One secret's row: names, places and times only, never a value."""

    name: str
    required: bool
    source: str
    where: str | None
    state: str
    version: str | None
    last_rotated: str | None
    age_days: float | None
    days_until_due: int | None
    detail: str | None

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data."""
        return asdict(self)


def max_age_days(environ: Mapping[str, str] | None = None) -> int:
    """The rotation policy in days: ``ROTATION_MAX_AGE_DAYS``, default 90 (the rotation's own).

    Raises:
        ConfigurationError: the variable is not a positive whole number.
    """
    from ..rotation.policy import max_age_days as policy_days

    return policy_days(os.environ if environ is None else environ)


def file_rotation_info(name: str, manager: SecretManager) -> RotationInfo | None:
    """Rotation info from the file a secret is read from (its modification time), if any."""
    try:
        where = manager.describe(name)
    except ConfigurationError:
        return None
    match = _FILE_SOURCE.match(where)
    if match is None:
        return None
    try:
        mtime = Path(match.group(1)).stat().st_mtime
    except OSError:
        return None
    return RotationInfo(last_rotated=datetime.fromtimestamp(mtime, tz=UTC))


class StoreRotationInfo:
    """Rotation times from the store ``SECRET_BACKEND`` names, else from files; cached briefly.

    The store (Vault or AWS, as the rotation writes it) is opened on first use; if it cannot be
    opened, or fails to answer for a secret, the file's time (or nothing) is reported instead.

    Args:
        environ: the environment to open the store from.
        ttl_seconds: how long an answer is reused (each costs the store a metadata read).
        clock: a monotonic clock in seconds.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._store: Any = None
        self._opened = False
        self._answers: dict[str, tuple[float, datetime | None]] = {}

    def __call__(self, name: str, manager: SecretManager) -> RotationInfo | None:
        """Say when ``name`` was last rotated."""
        store = self._open()
        if store is not None:
            now = self._clock()
            cached = self._answers.get(name)
            if cached is None or now - cached[0] >= self._ttl_seconds:
                cached = (now, self._ask(store, name))
                self._answers[name] = cached
            if cached[1] is not None:
                return RotationInfo(last_rotated=cached[1])
        return file_rotation_info(name, manager)

    def clear(self) -> None:
        """Forget the answers (and reopen the store next time)."""
        with self._lock:
            self._answers.clear()
            self._store, self._opened = None, False

    def _open(self) -> Any:
        with self._lock:
            if not self._opened:
                self._opened = True
                try:
                    from ..rotation.stores import open_store

                    store = open_store(self._environ)
                except (ImportError, YosaiSecretsError) as exc:
                    _log.warning("rotation times: the secret store cannot be opened: %s", exc)
                    store = None
                self._store = store if store is not None and store.name != "env" else None
            return self._store

    @staticmethod
    def _ask(store: Any, name: str) -> datetime | None:
        try:
            found = store.rotated_at(name)
        except Exception as exc:
            # The type only: a client library's message may quote what it was sent.
            _log.warning(
                "rotation time of %s unavailable from %s: %s", name, store.name, type(exc).__name__
            )
            return None
        return found if isinstance(found, datetime) else None


def _keys(names: Sequence[str], lookups: Mapping[str, str | None] | None) -> dict[str, str | None]:
    return {name: (lookups.get(name, name) if lookups is not None else name) for name in names}


def unresolvable(
    manager: SecretManager,
    names: Sequence[str],
    lookups: Mapping[str, str | None] | None = None,
) -> list[str]:
    """The names among ``names`` that cannot be resolved now (cheap when the cache is warm).

    ``lookups`` maps a name to the key that reads it (a reference), or None for a value the
    configuration holds itself; by default each name is read as is.
    """
    keys = _keys(names, lookups)
    results = manager.get_many([k for k in keys.values() if k is not None])
    return [
        name
        for name, key in keys.items()
        if key is not None and isinstance(results.get(key), ConfigurationError)
    ]


def posture(
    manager: SecretManager,
    *,
    environment: str,
    names: Sequence[str] = REQUIRED_SECRETS,
    lookups: Mapping[str, str | None] | None = None,
    rotation_info: RotationInfoProvider = file_rotation_info,
    max_age: int = DEFAULT_MAX_AGE_DAYS,
    now: datetime | None = None,
) -> list[SecretPosture]:
    """Return the posture of each of ``names``, in order.

    Args:
        manager: the manager the application reads its secrets through.
        environment: the deployment environment (decides which secrets are required).
        names: the secrets to report.
        lookups: the key that reads each name (see :func:`unresolvable`).
        rotation_info: where the last rotation and version of a secret come from.
        max_age: the rotation policy, in days.
        now: the current time (default: the wall clock, UTC).
    """
    moment = now or datetime.now(UTC)
    required = set(required_secrets(environment))
    keys = _keys(names, lookups)
    results = manager.get_many([k for k in keys.values() if k is not None])
    rows = []
    for name in names:
        key = keys[name]
        outcome = results.get(key) if key is not None else None
        detail = None
        if isinstance(outcome, SecretNotFoundError):
            state, detail = "missing", "not set in any source"
        elif isinstance(outcome, ConfigurationError):
            state, detail = "missing", type(outcome).__name__
        elif key is not None and manager.is_stale(key):
            state = "stale-served"
        else:
            state = "ok"
        info = rotation_info(name, manager) if state != "missing" else None
        last = info.last_rotated if info else None
        age_days = None
        due = None
        if last is not None:
            exact_age = max(0.0, (moment - last).total_seconds()) / _SECONDS_PER_DAY
            age_days = round(exact_age, 1)
            # Whole days left (negative: whole days overdue), truncated toward zero.
            due = int(max_age - exact_age)
            if state == "ok" and exact_age > max_age:
                state = "overdue"
        rows.append(
            SecretPosture(
                name=name,
                required=name in required,
                source=_backend_of(manager, key) if key is not None else "config",
                where=(_where(manager, key) if key else "configuration file")
                if state != "missing"
                else None,
                state=state,
                version=info.version if info else None,
                last_rotated=last.isoformat(timespec="seconds") if last else None,
                age_days=age_days,
                days_until_due=due,
                detail=detail,
            )
        )
    return rows


def _backend_of(manager: SecretManager, key: str) -> str:
    scheme, sep, _ = key.partition(":")
    return BACKEND_OF_SCHEME.get(scheme, scheme) if sep else manager.backend.name


def _where(manager: SecretManager, name: str) -> str | None:
    try:
        return manager.describe(name)
    except ConfigurationError:
        return None
