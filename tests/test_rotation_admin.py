"""The admin database connection (environment or a private file, never argv) and the second role
of alternating-users mode, against the real PostgreSQL the suite starts."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from yosai_secrets.errors import ConfigurationError
from yosai_secrets.rotation.postgres import PostgresRoles, read_admin_url_file

from .test_rotation_postgres import can_login


def _admin(postgres: Any) -> Any:
    import psycopg

    return psycopg.connect(postgres.dsn(), autocommit=True)


def _sql(postgres: Any, *statements: str) -> None:
    with _admin(postgres) as conn:
        for statement in statements:
            conn.execute(statement)


# -- the admin connection's file ------------------------------------------------------------------


def test_admin_url_file_must_be_private(tmp_path: Path, canary: str) -> None:
    """A 0600 file is read (stripped); a group- or world-readable one is refused without
    showing what it holds."""
    path = tmp_path / "admin-url"
    path.write_text(f"postgresql://admin:{canary}@db:5432/postgres\n", encoding="utf-8")
    path.chmod(0o600)
    assert read_admin_url_file(path) == f"postgresql://admin:{canary}@db:5432/postgres"
    for mode in (0o640, 0o604, 0o660):
        path.chmod(mode)
        with pytest.raises(ConfigurationError, match="chmod 600") as caught:
            read_admin_url_file(path)
        assert canary not in str(caught.value)


@pytest.mark.parametrize("problem", ["missing", "empty", "directory", "binary"])
def test_unusable_admin_url_file_is_a_clear_error(tmp_path: Path, problem: str) -> None:
    """A missing, empty, non-regular or non-text file names itself and what is wrong."""
    path = tmp_path / "admin-url"
    if problem == "empty":
        path.write_text("  \n", encoding="utf-8")
    elif problem == "directory":
        path.mkdir()
    elif problem == "binary":
        path.write_bytes(b"\xff\xfe\x00")
    if path.is_file():
        path.chmod(0o600)
    with pytest.raises(ConfigurationError, match=str(path)):
        read_admin_url_file(path)


# -- --setup-alternating: the second role -------------------------------------------------------


def _roles_and_tables(postgres: Any) -> tuple[str, str, str, str]:
    """A role the app logs in as, a group it belongs to, and a table each grants it."""
    tag = uuid.uuid4().hex[:8]
    first, group = f"app_{tag}_a", f"readers_{tag}"
    direct, via_group = f"direct_{tag}", f"grouped_{tag}"
    _sql(
        postgres,
        f"CREATE ROLE {first} LOGIN PASSWORD 'first-password-{tag}'",
        f"CREATE ROLE {group} NOLOGIN",
        f"GRANT {group} TO {first}",
        f"CREATE TABLE {direct} (n int)",
        f"CREATE TABLE {via_group} (n int)",
        f"GRANT SELECT ON {direct} TO {first}",
        f"GRANT SELECT ON {via_group} TO {group}",
        f"GRANT CREATE ON SCHEMA public TO {first}",
    )
    return first, group, direct, via_group


def test_second_role_acts_as_the_first_and_setup_is_idempotent(postgres: Any) -> None:
    """The second role logs in (once it has a password), reads what the first may (direct and
    group grants), creates objects the first owns; a second setup changes nothing."""
    import psycopg
    from psycopg import sql

    first, group, direct, via_group = _roles_and_tables(postgres)
    second = first[:-2] + "_b"
    roles = PostgresRoles(postgres.url())
    done = roles.create_alternate(first, second)
    assert done[0] == f"created role {second} (LOGIN, no password yet)"
    assert f"granted {first} to {second}" in done and f"granted {group} to {second}" in done
    assert roles.create_alternate(first, second) == []  # idempotent
    assert not can_login(postgres, second, "")  # no password yet: nobody logs in as it
    roles.set_password(second, "second-password-123456")
    with psycopg.connect(postgres.dsn(user=second, password="second-password-123456")) as conn:
        assert conn.execute("SELECT current_user, session_user").fetchone() == (first, second)
        for table in (direct, via_group):
            conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
        conn.execute(f"CREATE TABLE made_by_{second} (n int)")
        conn.commit()
    with _admin(postgres) as conn:
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = %s", (f"made_by_{second}",)
        ).fetchone()
    assert owner == (first,)  # whichever role is active, objects belong to the first


def test_an_existing_second_role_gets_only_what_it_lacks(postgres: Any) -> None:
    """An existing NOLOGIN role without memberships is completed, not recreated."""
    first, group, _, _ = _roles_and_tables(postgres)
    second = first + "_alt"
    _sql(postgres, f"CREATE ROLE {second} NOLOGIN", f"GRANT {group} TO {second}")
    done = PostgresRoles(postgres.url()).create_alternate(first, second)
    assert done == [
        f"allowed {second} to log in",
        f"granted {first} to {second}",
        f"sessions of {second} now act as {first} (SET role)",
    ]


def test_setup_needs_an_existing_first_role(postgres: Any) -> None:
    """A first role that does not exist is a configuration error naming it."""
    with pytest.raises(ConfigurationError, match="no_such_role_x"):
        PostgresRoles(postgres.url()).create_alternate("no_such_role_x", "no_such_role_y")
