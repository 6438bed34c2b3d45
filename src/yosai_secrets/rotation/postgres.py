"""PostgreSQL role passwords for a rotation (psycopg 3, the ``postgres`` extra).

The password is sent to the server as a SCRAM-SHA-256 verifier computed here, never in plain text,
so that no server log (``log_statement``) or ``pg_stat_activity`` row ever shows it. A new
connection with the new password proves it works before anything is promoted.

Two modes: one role whose password changes (pods holding the old password cannot open new
connections until they restart), or alternating users: two roles with the same rights, of which the
idle one gets the new password and becomes the active one; the old one keeps working until finish.
:meth:`PostgresRoles.create_alternate` makes the second role (``rotate --setup-alternating``).

The admin connection string holds a password: it reaches this module from the environment
(``ROTATION_DATABASE_URL``) or a private file (:func:`read_admin_url_file`), never a command line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from ..errors import ConfigurationError, MissingDependencyError, RotationError
from ..secret import redact

__all__ = [
    "DATABASE_URL_VARIABLE",
    "PostgresRoles",
    "read_admin_url_file",
    "safe_target",
    "scram_verifier",
]

#: The admin connection a rotation uses (or ``--database-url-file PATH``).
DATABASE_URL_VARIABLE: Final = "ROTATION_DATABASE_URL"
_ITERATIONS: Final = 4096
_MAX_URL_FILE_BYTES: Final = 16 * 1024


def read_admin_url_file(path: str | Path) -> str:
    """The admin connection string held in ``path``, a file only its owner may read.

    Raises:
        ConfigurationError: the file is missing, not a regular file, open to its group or to
            others (``chmod 600`` it), empty, too large or not UTF-8 text. The message never
            shows its contents.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot open the database admin URL file {path}: {exc.strerror}"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigurationError(f"the database admin URL file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigurationError(
                f"the database admin URL file {path} is open to its group or others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); it holds a password: run `chmod 600 {path}`"
            )
        raw = os.read(fd, _MAX_URL_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigurationError(f"the database admin URL file {path} is not UTF-8 text") from None
    if not text or len(raw) > _MAX_URL_FILE_BYTES:
        problem = "is empty" if not text else "is too large for a connection string"
        raise ConfigurationError(f"the database admin URL file {path} {problem}")
    return text


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
    """Where a connection string points (host, port, database), without user or password.

    Raises:
        ConfigurationError: the URL's port is not a number from 1 to 65535 (the message names
            the variable, never the URL: it holds a password).
    """
    if "://" in url:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        try:
            number = parts.port
        except ValueError:  # "host:notaport", "host:99999": urllib's message may quote the URL
            number = 0
        else:
            number = -1 if number is None else number
        if number == 0 or (number == -1 and _empty_port(parts.netloc)):
            raise ConfigurationError(
                f"the database admin URL ({DATABASE_URL_VARIABLE} or --database-url-file) has "
                "an invalid port: give a number from 1 to 65535 after the host, or no port at "
                "all (5432)"
            ) from None
        port = f":{number}" if number > 0 else ""
        return f"{host}{port}{parts.path or ''}"
    fields = dict(item.split("=", 1) for item in url.split() if "=" in item)
    return (
        f"{fields.get('host', 'localhost')}:{fields.get('port', '5432')}/{fields.get('dbname', '')}"
    )


def _empty_port(netloc: str) -> bool:
    """``host:`` with nothing after the colon (an IPv6 host's own colons are in brackets)."""
    host = netloc.rpartition("@")[2]
    return host.endswith(":")


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
        """From ``url`` (a file's or the caller's) or ``ROTATION_DATABASE_URL``; None if neither."""
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
                    f"the database admin URL ({DATABASE_URL_VARIABLE} or --database-url-file) "
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

    def terminate_sessions(self, role: str) -> int:
        """End every open session of ``role`` (``pg_terminate_backend``); how many were ended.

        The admin connection's own session is never ended. Needs a superuser or a member of
        ``pg_signal_backend`` (a superuser's sessions only a superuser may end).

        Raises:
            RotationError: the statement was refused (the message names the role, never a value).
        """
        from psycopg import Error

        with self._connect() as conn:
            try:
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE usename = %s AND pid <> pg_backend_pid()",
                    (role,),
                ).fetchall()
            except Error as exc:
                raise RotationError(
                    f"could not end the sessions of {role} at {self.target} "
                    f"({type(exc).__name__}: {_first_line(exc)}); the admin role needs "
                    "pg_signal_backend (or superuser)"
                ) from None
        return sum(1 for row in rows if row[0])

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

    def create_alternate(self, first: str, second: str) -> list[str]:
        """Make ``second`` a login role that acts exactly as ``first``; idempotent.

        ``second`` is created ``LOGIN`` without a password (nobody logs in as it until a rotation
        gives it one), is made a member of ``first`` and of every role ``first`` belongs to, and
        gets ``ALTER ROLE second SET role = first``: its sessions run as ``first``, so it has
        every privilege of ``first`` (direct grants, ownership, memberships, future grants) and
        the objects it creates belong to ``first``, whichever of the two is active. An existing
        ``second`` gets only what it lacks.

        Returns:
            What was changed, one line each (empty: nothing was missing).

        Raises:
            ConfigurationError: ``first`` does not exist, or the two names are the same.
            RotationError: a statement was refused (the admin role needs ``CREATEROLE``).
        """
        if first == second:
            raise ConfigurationError("alternating users need two different roles")
        with self._connect() as conn:
            if not _exists(conn, first):
                raise ConfigurationError(f"the role {first!r} does not exist at {self.target}")
            done: list[str] = []
            if not _exists(conn, second):
                self._run(conn, "CREATE ROLE {} LOGIN", second)
                done.append(f"created role {second} (LOGIN, no password yet)")
            elif not conn.execute(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (second,)
            ).fetchone()[0]:
                self._run(conn, "ALTER ROLE {} LOGIN", second)
                done.append(f"allowed {second} to log in")
            have = set(_memberships(conn, second))
            for group in [first, *_memberships(conn, first)]:
                if group not in have and group != second:
                    self._run(conn, "GRANT {} TO {}", group, second)
                    done.append(f"granted {group} to {second}")
            if f"role={first}" not in _settings(conn, second):
                self._run(conn, "ALTER ROLE {} SET role = {}", second, first)
                done.append(f"sessions of {second} now act as {first} (SET role)")
        return done

    def _run(self, conn: Any, template: str, *names: str) -> None:
        from psycopg import Error, sql

        statement = sql.SQL(template).format(*(sql.Identifier(n) for n in names))
        try:
            conn.execute(statement)
        except Error as exc:
            verb = template.split(" {", 1)[0]
            raise RotationError(
                f"{verb} {' '.join(names)} at {self.target} failed ({type(exc).__name__}: "
                f"{_first_line(exc)}); the admin role needs CREATEROLE"
            ) from None


def _exists(conn: Any, role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def _memberships(conn: Any, role: str) -> list[str]:
    rows = conn.execute(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s ORDER BY g.rolname",
        (role,),
    ).fetchall()
    return [str(row[0]) for row in rows]


def _settings(conn: Any, role: str) -> list[str]:
    row = conn.execute(
        "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
        "WHERE r.rolname = %s AND s.setdatabase = 0",
        (role,),
    ).fetchone()
    return [str(item) for item in (row[0] if row and row[0] else [])]


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
