"""Secret posture: for each secret, where it comes from, its state and its age — never its value.

Shared by ``GET /api/secrets``, ``GET /readyz`` and the posture page. A secret's state is one of:

- ``missing``: it cannot be resolved now (not set, or its backend fails with nothing cached), or
  it still holds the example's placeholder (``replace-me-...``: not set);
- ``stale-served``: its backend fails and the cache serves the last good value;
- else, for the secrets the rotation policy covers (``SECRET_KEY``, ``*PASSWORD`` and
  ``AUTH0_CLIENT_SECRET``: :func:`~yosai_secrets.rotation_age.aged_keys`), the policy's verdict,
  exactly as ``yosai-secrets status`` gives it: ``ok``, ``due-soon``, ``overdue`` (older than
  ``ROTATION_MAX_AGE_DAYS``, default 90) or ``unknown`` (no rotation record anywhere);
- ``ok`` for the others (the Auth0 client id, domain and audience: their age is shown, with no
  due date).

Ages, days until due and verdicts come from :func:`yosai_secrets.rotation_age.rotation_verdicts`,
with the store's records, else the modification time of the file a secret is read from (see
:mod:`yosai_secrets.rotation_age`). Neither this module nor a request loads the rotation package
unless ``SECRET_BACKEND`` names a store to ask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from ..environments import REQUIRED_SECRETS, required_secrets
from ..errors import ConfigurationError, SecretNotFoundError
from ..manager import SecretManager
from ..placeholders import PLACEHOLDER_WORDING, is_placeholder
from ..references import BACKEND_OF_SCHEME
from ..rotation_age import (
    DEFAULT_MAX_AGE_DAYS,
    RotationInfo,
    RotationInfoProvider,
    RotationRecords,
    Verdict,
    aged_keys,
    file_rotation_info,
    max_age_days,
    rotation_verdicts,
)

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

#: The provider the API uses by default: the store's records, else the secret's file.
StoreRotationInfo = RotationRecords


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
    covered = set(aged_keys(names))
    keys = _keys(names, lookups)
    states = _reachability(manager, names, keys)
    present = [name for name in names if states[name][0] != "missing"]
    verdicts = {
        v.key: v
        for v in rotation_verdicts(
            present, manager, rotation_info=rotation_info, max_days=max_age, now=moment
        )
    }
    return [
        _row(
            manager,
            name,
            keys[name],
            states[name],
            verdicts.get(name),
            required=name in required,
            covered=name in covered,
        )
        for name in names
    ]


#: A secret's state before the rotation policy is asked, and why it is missing (if it is).
_State = tuple[str, str | None]


def _reachability(
    manager: SecretManager, names: Sequence[str], keys: Mapping[str, str | None]
) -> dict[str, _State]:
    """Each name's state as reading it now shows: ``missing``, ``stale-served`` or ``ok``."""
    results = manager.get_many([k for k in keys.values() if k is not None])
    states: dict[str, _State] = {}
    for name in names:
        key = keys[name]
        outcome = results.get(key) if key is not None else None
        if isinstance(outcome, SecretNotFoundError):
            states[name] = ("missing", "not set in any source")
        elif is_placeholder(outcome):
            states[name] = ("missing", PLACEHOLDER_WORDING)
        elif isinstance(outcome, ConfigurationError):
            states[name] = ("missing", type(outcome).__name__)
        elif key is not None and manager.is_stale(key):
            states[name] = ("stale-served", None)
        else:
            states[name] = ("ok", None)
    return states


def _row(
    manager: SecretManager,
    name: str,
    key: str | None,
    reached: _State,
    verdict: Verdict | None,
    *,
    required: bool,
    covered: bool,
) -> SecretPosture:
    """One secret's row; the policy's verdict replaces ``ok`` for the secrets it covers."""
    state, detail = reached
    judged = verdict if covered else None
    if judged is not None and state == "ok":
        state = judged.state
    last = verdict.rotated_at if verdict else None
    return SecretPosture(
        name=name,
        required=required,
        source=_backend_of(manager, key) if key is not None else "config",
        where=(_where(manager, key) if key else "configuration file")
        if state != "missing"
        else None,
        state=state,
        version=verdict.version if verdict else None,
        last_rotated=last.isoformat(timespec="seconds") if last else None,
        age_days=verdict.age_days if verdict else None,
        days_until_due=judged.days_until_due if judged else None,
        detail=detail,
    )


def _backend_of(manager: SecretManager, key: str) -> str:
    scheme, sep, _ = key.partition(":")
    if not sep or scheme not in BACKEND_OF_SCHEME:
        return manager.backend.name
    # secret:NAME maps to None: the default backend's NAME.
    return BACKEND_OF_SCHEME[scheme] or manager.backend.name


def _where(manager: SecretManager, name: str) -> str | None:
    try:
        return manager.describe(name)
    except ConfigurationError:
        return None
