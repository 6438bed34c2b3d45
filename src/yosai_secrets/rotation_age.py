"""How old each secret is against the rotation policy: one computation for every report.

``yosai-secrets status`` and the posture page (``GET /api/secrets``, ``/dashboard/``) both judge
ages with :func:`rotation_verdicts` and the same provider (:class:`RotationRecords`), so the same
secret gets the same age, the same days until due and the same verdict in both.

**The policy.** ``ROTATION_MAX_AGE_DAYS`` (a whole number of days, default
:data:`DEFAULT_MAX_AGE_DAYS`, 90) is the most a secret may age. It covers (:func:`aged_keys`) the
secrets ``yosai-secrets rotate`` generates (:func:`rotated_keys`: ``SECRET_KEY`` and every key
ending in ``PASSWORD``) and the credentials issued elsewhere that must be rotated there too
(:data:`ISSUED_KEYS`: ``AUTH0_CLIENT_SECRET``, rotated in Auth0); the other settings (the Auth0
client id, domain and audience) have their age shown but no verdict.

**Where a last rotation comes from**, the first that knows:

1. the secret store ``SECRET_BACKEND`` names, as rotation records it per key (Vault KV v2 custom
   metadata ``rotated_at_<KEY>``, AWS's ``rotated-at`` tag); never a version's creation time,
   which any write refreshes;
2. the modification time of the file the secret is read from (Docker secret, ``NAME_FILE``, the
   development file ``secrets/<name>.txt``);
3. the ``rotation.yosai.io/<KEY>`` annotation of the Kubernetes Secret manifest, when one is given
   (``status --manifest``; a running service has none).

**The verdict**: ``ok``; ``due-soon`` (in the policy's last tenth); ``overdue`` (older than the
policy); ``unknown`` (no record anywhere: never rotated as far as anyone can tell). ``age_days`` is
rounded to a tenth of a day; ``days_until_due`` counts a started day as a day left, so a secret
rotated a moment ago is due in 90 days under a 90-day policy and one rotated 100 days ago in -10.

Importing this module imports neither the rotation package nor anything optional; the store and
the manifest are opened on first use.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .envvars import env_int
from .errors import ConfigurationError, YosaiSecretsError

if TYPE_CHECKING:
    from .manager import SecretManager

__all__ = [
    "DEFAULT_MAX_AGE_DAYS",
    "ISSUED_KEYS",
    "MAX_AGE_VARIABLE",
    "RotationInfo",
    "RotationInfoProvider",
    "RotationRecords",
    "Verdict",
    "aged_keys",
    "file_rotation_info",
    "judge",
    "max_age_days",
    "parse_time",
    "rotated_keys",
    "rotation_verdicts",
]

_log = logging.getLogger("yosai_secrets.rotation_age")

#: The rotation policy's default maximum age, in days.
DEFAULT_MAX_AGE_DAYS: Final = 90
#: The variable that changes it.
MAX_AGE_VARIABLE: Final = "ROTATION_MAX_AGE_DAYS"
#: Credentials issued elsewhere (``rotate`` does not generate them) whose age the policy judges.
ISSUED_KEYS: Final = ("AUTH0_CLIENT_SECRET",)

# The last tenth of the policy is "due soon".
_DUE_SOON_FRACTION: Final = 0.9

# What the env backend's describe() says for a file source; the file's mtime is its last change.
_FILE_SOURCE: Final = re.compile(r"^(?:\w+_FILE=|Docker secret |development secret file )(.+)$")


def max_age_days(environ: Mapping[str, str] | None = None, override: int | None = None) -> int:
    """The policy's maximum age in days: ``override``, else ``ROTATION_MAX_AGE_DAYS``, else 90.

    Raises:
        ConfigurationError: the variable (or ``override``) is not a whole number >= 1.
    """
    if override is not None:
        if override < 1:
            raise ConfigurationError(
                f"the rotation policy's maximum age must be at least 1 day, not {override}"
            )
        return override
    source = os.environ if environ is None else environ
    return env_int(source, MAX_AGE_VARIABLE, DEFAULT_MAX_AGE_DAYS, minimum=1)


def rotated_keys(names: Iterable[str]) -> list[str]:
    """The keys among ``names`` the policy covers: ``SECRET_KEY``, then every ``*PASSWORD`` key."""
    listed = list(names)
    chosen = [k for k in listed if k == "SECRET_KEY"]
    chosen += [k for k in listed if k.upper().endswith("PASSWORD") and k not in chosen]
    return chosen


def aged_keys(names: Iterable[str]) -> list[str]:
    """The keys among ``names`` whose age the policy judges: :func:`rotated_keys`, then issued.

    ``status`` and the posture page both choose with this rule; ``rotate`` generates only
    :func:`rotated_keys`.
    """
    listed = list(names)
    chosen = rotated_keys(listed)
    return chosen + [k for k in listed if k in ISSUED_KEYS and k not in chosen]


def parse_time(stamp: str) -> datetime | None:
    """Parse an ISO 8601 time (``Z``, nanoseconds allowed) as UTC-aware; None if it is not one."""
    text = stamp.strip().replace("Z", "+00:00")
    # Vault gives nanoseconds; datetime takes microseconds.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RotationInfo:
    """What is known of a secret's rotation.

    Attributes:
        last_rotated: when its current value was written.
        version: the store's version of it, where there is one.
        source: where the time comes from (``vault``, ``aws``, ``file``, ``manifest``).
    """

    last_rotated: datetime | None = None
    version: str | None = None
    source: str | None = None


#: Given a secret's name and the manager, say what is known of its rotation (or None).
RotationInfoProvider = Callable[[str, "SecretManager"], RotationInfo | None]


@dataclass(frozen=True, slots=True)
class Verdict:
    """One secret's standing against the policy; names and times only, never a value."""

    key: str
    source: str | None
    rotated_at: datetime | None
    age_days: float | None
    days_until_due: int | None
    state: str
    version: str | None = None

    @property
    def failing(self) -> bool:
        """Overdue, or never rotated as far as anyone can tell."""
        return self.state in ("overdue", "unknown")


def judge(
    key: str,
    source: str | None,
    rotated_at: datetime | None,
    now: datetime,
    max_days: int,
    *,
    version: str | None = None,
) -> Verdict:
    """Judge one secret's last rotation against a policy of ``max_days`` (see the module)."""
    if rotated_at is None:
        return Verdict(key, source, None, None, None, "unknown", version)
    # A clock a little behind the store's must not make a fresh secret younger than new.
    exact = max(0.0, (now - rotated_at) / timedelta(days=1))
    if exact > max_days:
        state = "overdue"
    elif exact > max_days * _DUE_SOON_FRACTION:
        state = "due-soon"
    else:
        state = "ok"
    due = math.ceil(max_days - exact)
    return Verdict(key, source, rotated_at, round(exact, 1), due, state, version)


def rotation_verdicts(
    names: Sequence[str],
    manager: SecretManager,
    *,
    rotation_info: RotationInfoProvider,
    max_days: int,
    now: datetime | None = None,
) -> list[Verdict]:
    """Judge each of ``names``, in order: the one computation ``status`` and the posture share.

    Args:
        names: the secrets to judge.
        manager: the manager the secrets are read through (it says which file a secret is in).
        rotation_info: where last rotations come from (normally a :class:`RotationRecords`).
        max_days: the policy (:func:`max_age_days`).
        now: the current time (default: the wall clock, UTC).
    """
    moment = now or datetime.now(UTC)
    verdicts = []
    for name in names:
        info = rotation_info(name, manager)
        if info is None:
            verdicts.append(judge(name, None, None, moment, max_days))
        else:
            verdicts.append(
                judge(name, info.source, info.last_rotated, moment, max_days, version=info.version)
            )
    return verdicts


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
    return RotationInfo(last_rotated=datetime.fromtimestamp(mtime, tz=UTC), source="file")


class RotationRecords:
    """Last rotations from the store, else the secret's file, else the manifest; cached briefly.

    The store ``SECRET_BACKEND`` names (Vault or AWS, as the rotation writes it) is opened on first
    use; if it cannot be opened, or fails to answer for a secret, the next source is asked.

    Args:
        environ: the environment to open the store from.
        manifest: a Kubernetes Secret manifest whose rotation annotations are the last resort
            (read once, when it exists).
        ttl_seconds: how long a store's answer is reused (each costs it a metadata read).
        clock: a monotonic clock in seconds.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        manifest: Path | None = None,
        ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._manifest_path = manifest
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._store: Any = None
        self._opened = False
        self._annotations: dict[str, datetime | None] | None = None
        self._answers: dict[str, tuple[float, datetime | None]] = {}

    def __call__(self, name: str, manager: SecretManager) -> RotationInfo | None:
        """Say when ``name`` was last rotated, and where that is recorded."""
        store = self._open()
        if store is not None:
            now = self._clock()
            cached = self._answers.get(name)
            if cached is None or now - cached[0] >= self._ttl_seconds:
                cached = (now, self._ask(store, name))
                self._answers[name] = cached
            if cached[1] is not None:
                return RotationInfo(last_rotated=cached[1], source=str(store.name))
        found = file_rotation_info(name, manager)
        if found is not None:
            return found
        stamp = self._manifest_times().get(name)
        return RotationInfo(last_rotated=stamp, source="manifest") if stamp else None

    def clear(self) -> None:
        """Forget the answers (and reopen the store and re-read the manifest next time)."""
        with self._lock:
            self._answers.clear()
            self._store, self._opened = None, False
            self._annotations = None

    def _open(self) -> Any:
        with self._lock:
            if not self._opened:
                self._opened = True
                if (self._environ.get("SECRET_BACKEND", "").strip().lower() or "env") == "env":
                    # No store keeps dates: do not load the rotation package into a web worker.
                    return None
                try:
                    from .rotation.stores import open_store

                    store = open_store(self._environ)
                except (ImportError, YosaiSecretsError) as exc:
                    _log.warning("rotation times: the secret store cannot be opened: %s", exc)
                    store = None
                self._store = store if store is not None and store.name != "env" else None
            return self._store

    def _manifest_times(self) -> dict[str, datetime | None]:
        with self._lock:
            if self._annotations is None:
                self._annotations = {}
                path = self._manifest_path
                if path is not None and path.exists():
                    from .rotation.manifest import SecretManifest

                    manifest = SecretManifest(path)
                    held = manifest.keys()
                    for key in held:
                        stamp = manifest.annotation(key)
                        self._annotations[key] = parse_time(stamp) if stamp else None
            return self._annotations

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
