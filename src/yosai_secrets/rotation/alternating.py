"""``rotate --setup-alternating``: create the second role of alternating-users mode, once.

The first role is the one the app logs in as (the manifest's ``DB_USER``); the second is named by
``--db-users FIRST,SECOND`` (or ``ROTATION_DB_USERS``), else ``FIRST_b`` (``app_a`` -> ``app_b``).
See :meth:`~.postgres.PostgresRoles.create_alternate` for what the second role gets.
"""

from __future__ import annotations

from ..errors import ConfigurationError
from .manifest import SecretManifest
from .plan import DB_USER_KEY, RotationOptions
from .postgres import DATABASE_URL_VARIABLE
from .report import Outcome, RotationReport
from .schedule import command

__all__ = ["second_role_name", "setup_alternating"]


def second_role_name(first: str) -> str:
    """The default name of the second role: ``app_a`` -> ``app_b``, ``app`` -> ``app_b``."""
    return first[:-2] + "_b" if first.endswith("_a") else first + "_b"


def setup_alternating(options: RotationOptions) -> RotationReport:
    """Create (or complete) the second role; the report says what changed and what to run next.

    Raises:
        ConfigurationError: no admin connection, no ``DB_USER`` in the manifest, or the roles
            given do not include it.
        RotationError: PostgreSQL refused a statement.
    """
    roles = options.roles()
    if roles is None:
        raise ConfigurationError(
            f"--setup-alternating needs the database admin connection: set "
            f"{DATABASE_URL_VARIABLE} or give --database-url-file PATH"
        )
    first, second = _pair(options)
    report = RotationReport("setup-alternating", manifest=str(options.manifest))
    report.notes = roles.create_alternate(first, second)
    report.database = {"mode": "alternating", "role": f"{first},{second}", "target": roles.target}
    report.outcome = Outcome.SET_UP if report.notes else Outcome.NOTHING_TO_DO
    pair = f"{first},{second}"
    flags = tuple(f for f in options.command_flags if not f.startswith("--db-users"))
    report.next_command = " ".join(["yosai-secrets rotate", f"--db-users {pair}", *flags])
    report.next_note = (
        f"or set ROTATION_DB_USERS={pair} for every rotation; "
        f"`{command(options)}` without it stays in single-role mode"
    )
    return report


def _pair(options: RotationOptions) -> tuple[str, str]:
    manifest = SecretManifest(options.manifest)
    if not manifest.has(DB_USER_KEY):
        raise ConfigurationError(
            f"{options.manifest} has no {DB_USER_KEY}: the role the app logs in as is the first "
            "of the two"
        )
    active = manifest.get(DB_USER_KEY)
    pair = options.alternating_users()
    if pair is None:
        return active, second_role_name(active)
    if active not in pair:
        raise ConfigurationError(
            f"{DB_USER_KEY} in {options.manifest} is {active!r}, not one of {pair[0]!r}, "
            f"{pair[1]!r}"
        )
    return active, pair[1] if active == pair[0] else pair[0]
