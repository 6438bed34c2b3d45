"""PostgreSQL role passwords for a rotation (psycopg 3, the ``postgres`` extra).

The password is sent to the server as a SCRAM-SHA-256 verifier computed here, never in plain text,
so that no server log (``log_statement``) or ``pg_stat_activity`` row ever shows it. A new
connection with the new password proves it works before anything is promoted.

Two modes: one role whose password changes (pods holding the old password cannot open new
connections until they restart), or alternating users: two roles with the same rights, of which the
idle one gets the new password and becomes the active one; the old one keeps working until finish.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from ..errors import ConfigurationError, MissingDependencyError, RotationError
from ..secret import redact

__all__ = ["DATABASE_URL_VARIABLE", "PostgresRoles", "safe_target", "scram_verifier"]

#: The admin connection a rotation uses when ``--database-url`` is not given.
DATABASE_URL_VARIABLE: Final = "ROTATION_DATABASE_URL"
_ITERATIONS: Final = 4096


def scram_verifier(
    password: str, *, salt: bytes | None = None, iterations: int = _ITERATIONS
) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677).

    Raises:
        ValueError: a non-ASCII password (SASLprep is not implemented; generated ones are ASCII).
    """
    if not password.isascii():
        raise ValueError("only ASCII passwords can be pre-hashed here")
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def safe_target(url: str) -> str:
    """Where a connection string points (host, port, database), without user or password."""
    if "://" in url:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        return f"{host}{port}{parts.path or ''}"
    fields = dict(item.split("=", 1) for item in url.split() if "=" in item)
    return (
        f"{fields.get('host', 'localhost')}:{fields.get('port', '5432')}/{fields.get('dbname', '')}"
    )


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise MissingDependencyError(
            "psycopg", "postgres", "rotating PostgreSQL passwords"
        ) from None
    return psycopg


class PostgresRoles:
    """Change and test role passwords through an admin connection.

    Args:
        admin_url: a libpq URL or key=value string for a role allowed to ``ALTER ROLE``.
        connect_timeout_seconds: the bound on each connection attempt.
    """

    def __init__(self, admin_url: str, *, connect_timeout_seconds: int = 10) -> None:
        if not admin_url.strip():
            raise ConfigurationError(f"the database admin URL ({DATABASE_URL_VARIABLE}) is empty")
        self._admin_url = admin_url
        self._timeout = connect_timeout_seconds
        self.target = safe_target(admin_url)

    def __repr__(self) -> str:
        return f"PostgresRoles({self.target!r})"

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], url: str | None = None
    ) -> PostgresRoles | None:
        """From ``--database-url`` or ``ROTATION_DATABASE_URL``; None when neither is set."""
        chosen = (url or environ.get(DATABASE_URL_VARIABLE, "")).strip()
        return cls(chosen) if chosen else None

    def _connect(self, **overrides: Any) -> Any:
        psycopg = _psycopg()
        try:
            return psycopg.connect(
                self._admin_url, connect_timeout=self._timeout, autocommit=True, **overrides
            )
        except psycopg.Error as exc:
            who = overrides.get("user", "the admin role")
            if isinstance(exc, psycopg.ProgrammingError):
                # A malformed connection string: its text may hold the password, never echo it.
                raise RotationError(
                    f"the database admin URL ({DATABASE_URL_VARIABLE} or --database-url) "
                    "is malformed"
                ) from None
            # psycopg names host and user, not the password; mask anything we know anyway.
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            detail = redact(lines[0] if lines else type(exc).__name__, extra=self._known(overrides))
            raise RotationError(
                f"could not connect to PostgreSQL at {self.target} as {who}: {detail}"
            ) from None

    def _known(self, overrides: Mapping[str, Any]) -> list[str]:
        known = [str(overrides["password"])] if overrides.get("password") else []
        from psycopg.conninfo import conninfo_to_dict

        try:
            admin = conninfo_to_dict(self._admin_url).get("password")
        except Exception:  # a malformed string is reported elsewhere
            admin = None
        if admin:
            known.append(str(admin))
        return known

    def set_password(self, role: str, password: str | None) -> None:
        """Set ``role``'s password (None: no password, so nobody can log in as it with one)."""
        self._alter(role, None if password is None else scram_verifier(password))

    def set_verifier(self, role: str, verifier: str | None) -> None:
        """Restore a stored verifier exactly (from :meth:`verifier`)."""
        self._alter(role, verifier)

    def verifier(self, role: str) -> str | None:
        """The role's stored verifier, or None when unreadable (not a superuser) or unset."""
        from psycopg import Error

        with self._connect() as conn:
            try:
                row = conn.execute(
                    "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
                ).fetchone()
            except Error:
                return None
        return str(row[0]) if row and row[0] else None

    def role_exists(self, role: str) -> bool:
        """Whether ``role`` exists."""
        with self._connect() as conn:
            row = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        return row is not None

    def test_login(self, role: str, password: str) -> None:
        """Open a new connection as ``role`` with ``password`` and run ``SELECT 1``.

        Raises:
            RotationError: the login failed (the message never shows the password).
        """
        with self._connect(user=role, password=password) as conn:
            conn.execute("SELECT 1").fetchone()

    def _alter(self, role: str, verifier: str | None) -> None:
        from psycopg import Error, sql

        statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(verifier) if verifier else sql.SQL("NULL")
        )
        with self._connect() as conn:
            try:
                conn.execute(statement)
            except Error as exc:
                raise RotationError(
                    f"ALTER ROLE {role} at {self.target} failed ({type(exc).__name__}); "
                    "check that the admin role may alter it, then run rotate again to resume"
                ) from None
