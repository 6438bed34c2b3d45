"""What a rotation will change: the keys, their new values, the database roles, the options.

Building a plan reads the manifest and generates values but writes nothing; the engine makes it
durable (the journal) before anything depends on it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from ..errors import ConfigurationError, RotationError
from ..rotation_age import rotated_keys
from .generate import (
    FALLBACKS_KEY,
    format_fallbacks,
    generate_value,
    is_placeholder,
    parse_fallbacks,
)
from .kubectl import DEFAULT_DEPLOYMENT, Kubectl
from .manifest import SecretManifest
from .postgres import PostgresRoles
from .state import DatabasePlan, DbMode, RotationState
from .stores import Store

__all__ = [
    "DB_PASSWORD_KEY",
    "DB_USER_KEY",
    "DEFAULT_MANIFEST",
    "DEFAULT_SESSION_LIFETIME_SECONDS",
    "Progress",
    "RotationOptions",
    "build_plan",
    "default_keys",
    "ensure_manifest",
    "example_for",
    "no_progress",
    "session_lifetime_seconds",
]

DEFAULT_MANIFEST: Final = Path("k8s/config/api-secrets.yaml")
DB_PASSWORD_KEY: Final = "DB_PASSWORD"  # noqa: S105 (a key name, not a password)
DB_USER_KEY: Final = "DB_USER"
#: Flask's default ``PERMANENT_SESSION_LIFETIME``: 31 days.
DEFAULT_SESSION_LIFETIME_SECONDS: Final = 31 * 24 * 3600
SESSION_LIFETIME_VARIABLE: Final = "PERMANENT_SESSION_LIFETIME"

#: Shows that a long step is under way: called with the step's label, used as a context manager.
Progress = Callable[[str], AbstractContextManager[object]]


def no_progress(label: str) -> AbstractContextManager[object]:
    """Show nothing (the default: a library call prints nothing)."""
    return contextlib.nullcontext()


@dataclass
class RotationOptions:
    """How to rotate: which manifest and keys, where to apply, which database, which store.

    Args:
        manifest: the Kubernetes Secret manifest.
        keys: the keys to rotate; None means ``SECRET_KEY`` and every key ending in ``PASSWORD``.
        apply: apply the manifest with kubectl and restart the deployment (False: ``--no-apply``).
        deployment: the deployment to restart (``ROTATION_DEPLOYMENT``, default ``yosai-api``).
        database_url: the admin connection (the CLI reads ``ROTATION_DATABASE_URL`` or
            ``--database-url-file``; never a command-line argument).
        db_users: two roles for alternating-users mode (``ROTATION_DB_USERS=a,b``).
        environ: the environment the store and defaults are read from.
        store: the secret store (default: from ``SECRET_BACKEND``).
        kubectl: the kubectl runner.
        clock: the current UTC time.
        after_step: called with each step's name once it is durable (tests stop a run here).
        now: ``--finish`` without waiting for the session lifetime (an incident).
        skip_cluster_check: ``--finish`` without checking the cluster (needs ``now`` too).
        force_conflicts: let the apply take over fields another manager owns.
        progress: shows long steps as they run (the CLI: a status line on a terminal).
        announce: called with a line to show at once (e.g. the cluster about to be changed).
        command_flags: options repeated in the commands a report suggests (``--manifest P``).
        grace: False for an incident: the previous values are not kept (no SECRET_KEY fallback),
            the leaked database credential stops logging in and its sessions are ended, and the
            store's versions holding old values are purged, all in one run.
        reason: why the rotation is run (``--reason``), for the audit log.
    """

    manifest: Path = DEFAULT_MANIFEST
    keys: Sequence[str] | None = None
    apply: bool = True
    deployment: str | None = None
    database_url: str | None = None
    db_users: Sequence[str] | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    store: Store | None = None
    kubectl: Kubectl = field(default_factory=Kubectl)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    after_step: Callable[[str], None] | None = None
    now: bool = False
    skip_cluster_check: bool = False
    force_conflicts: bool = False
    progress: Progress = no_progress
    announce: Callable[[str], None] | None = None
    command_flags: tuple[str, ...] = ()
    grace: bool = True
    reason: str = ""

    def deployment_name(self) -> str:
        """The deployment to restart."""
        return (
            self.deployment
            or self.environ.get("ROTATION_DEPLOYMENT", "").strip()
            or DEFAULT_DEPLOYMENT
        )

    def roles(self) -> PostgresRoles | None:
        """The database admin connection, if one is configured."""
        return PostgresRoles.from_environ(self.environ, self.database_url)

    def alternating_users(self) -> tuple[str, str] | None:
        """The two roles of alternating-users mode, if configured."""
        users = list(self.db_users or [])
        if not users:
            raw = self.environ.get("ROTATION_DB_USERS", "")
            users = [u.strip() for u in raw.split(",") if u.strip()]
        if not users:
            return None
        if len(users) != 2 or users[0] == users[1]:
            raise ConfigurationError(
                "alternating-users mode needs two different roles, e.g. app_a,app_b"
            )
        return users[0], users[1]


def session_lifetime_seconds(environ: Mapping[str, str]) -> float:
    """How long a session signed with the old key lives (``PERMANENT_SESSION_LIFETIME``, s).

    Raises:
        ConfigurationError: the variable is set but is not a positive number of seconds.
    """
    raw = environ.get(SESSION_LIFETIME_VARIABLE, "").strip()
    if not raw:
        return float(DEFAULT_SESSION_LIFETIME_SECONDS)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigurationError(
            f"{SESSION_LIFETIME_VARIABLE}={raw!r} is not a positive number of seconds "
            "(Flask's session lifetime; default 31 days)"
        )
    return seconds


def example_for(manifest: Path) -> Path:
    """``api-secrets.yaml`` -> ``api-secrets.example.yaml``."""
    return manifest.with_name(f"{manifest.stem}.example{manifest.suffix}")


def ensure_manifest(manifest: Path) -> bool:
    """Create the manifest from its example (mode 0600) when it is missing; True if created."""
    if manifest.exists():
        return False
    example = example_for(manifest)
    if not example.is_file():
        raise ConfigurationError(
            f"the Secret manifest {manifest} does not exist and there is no {example} to create "
            "it from; pass --manifest PATH"
        )
    from ..fileio import atomic_write_text

    # 0600 from the first byte: the example is world-readable, the real manifest is not.
    atomic_write_text(manifest, example.read_text(encoding="utf-8"), mode=0o600)
    return True


def default_keys(manifest: SecretManifest) -> list[str]:
    """``SECRET_KEY`` and every key ending in ``PASSWORD`` that the manifest holds."""
    return rotated_keys(manifest.keys())


def build_plan(options: RotationOptions, manifest: SecretManifest, store: Store) -> RotationState:
    """The journal's first contents: every entry's old and new value, the database plan.

    Raises:
        ConfigurationError: a key is missing, or the database settings do not fit the manifest.
    """
    keys = _chosen_keys(options, manifest)
    old, new = _old_and_new_values(keys, manifest, grace=options.grace)
    db: DatabasePlan | None = None
    roles = options.roles()
    if DB_PASSWORD_KEY in keys and roles is not None:
        db = _db_plan(options, manifest, roles, old, new)
    # The passwords whose database this rotation does not change itself.
    unmanaged = [
        k
        for k in keys
        if k.upper().endswith("PASSWORD") and not (k == DB_PASSWORD_KEY and db is not None)
    ]
    return RotationState(
        id=str(uuid.uuid4()),
        started_at=_stamp(options.clock()),
        manifest=str(manifest.path),
        keys=keys,
        old=old,
        new=new,
        plain=[DB_USER_KEY] if db is not None and db.mode is DbMode.ALTERNATING else [],
        annotations={k: manifest.annotation(k) for k in keys},
        old_digest=manifest.recorded_digest(),
        absent=[k for k in new if not manifest.has(k)],
        db=db,
        unmanaged=unmanaged,
        # A password this tool cannot change where it is checked must not reach the app (store
        # readers, restarted pods) before the operator changed it: hold until `--restart`.
        hold=bool(unmanaged),
        store={"backend": store.name},
        deployment=options.deployment_name(),
        namespace=manifest.namespace(),
        incident=not options.grace,
    )


def _chosen_keys(options: RotationOptions, manifest: SecretManifest) -> list[str]:
    keys = list(options.keys) if options.keys else default_keys(manifest)
    if not keys:
        raise ConfigurationError(
            f"{manifest.path} holds no SECRET_KEY and no key ending in PASSWORD; pass --keys"
        )
    missing = [k for k in keys if not manifest.has(k)]
    if missing:
        raise ConfigurationError(f"{manifest.path} does not hold {', '.join(missing)}")
    if FALLBACKS_KEY in keys:
        raise ConfigurationError(f"{FALLBACKS_KEY} is not rotated itself; rotate SECRET_KEY")
    return keys


def _old_and_new_values(
    keys: list[str], manifest: SecretManifest, *, grace: bool = True
) -> tuple[dict[str, str], dict[str, str]]:
    """Each key's value now and a new one; a new SECRET_KEY moves the old one to the fallbacks.

    A placeholder (``replace-me-...``) never signed a session: it is not kept as a fallback.
    Without ``grace`` (an incident) no fallback is kept at all: every session signed before is
    refused.
    """
    old = {k: manifest.get(k) for k in keys}
    new = {k: generate_value() for k in keys}
    if "SECRET_KEY" in keys:
        previous = manifest.get(FALLBACKS_KEY) if manifest.has(FALLBACKS_KEY) else ""
        old[FALLBACKS_KEY] = previous
        kept = [old["SECRET_KEY"], *parse_fallbacks(previous)] if grace else []
        new[FALLBACKS_KEY] = format_fallbacks([k for k in kept if not is_placeholder(k)])
    return old, new


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _db_plan(
    options: RotationOptions,
    manifest: SecretManifest,
    roles: PostgresRoles,
    old: dict[str, str],
    new: dict[str, str],
) -> DatabasePlan:
    if not manifest.has(DB_USER_KEY):
        raise ConfigurationError(
            f"{manifest.path} has no {DB_USER_KEY}: the rotation needs it to know which role's "
            "password to change"
        )
    active = manifest.get(DB_USER_KEY)
    pair = options.alternating_users()
    if pair is None:
        role, mode = active, DbMode.SINGLE
    else:
        if active not in pair:
            raise ConfigurationError(
                f"{DB_USER_KEY} in {manifest.path} is {active!r}, not one of the alternating "
                f"roles {pair[0]!r}, {pair[1]!r}"
            )
        role, mode = (pair[1] if active == pair[0] else pair[0]), DbMode.ALTERNATING
        old[DB_USER_KEY] = active
        new[DB_USER_KEY] = role
    try:
        exists = roles.role_exists(role)
    except RotationError as exc:
        raise ConfigurationError(str(exc)) from None
    if not exists:
        raise ConfigurationError(f"the database role {role!r} does not exist at {roles.target}")
    return DatabasePlan(
        mode=mode,
        role=role,
        active=active,
        target=roles.target,
        previous_verifier=roles.verifier(role),
    )
