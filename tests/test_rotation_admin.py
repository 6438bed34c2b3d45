"""The admin database connection (environment or a private file, never argv) and the second role
of alternating-users mode, against the real PostgreSQL the suite starts."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from yosai_secrets.errors import ConfigurationError
from yosai_secrets.rotation.manifest import SecretManifest
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


# -- the command line: credentials never on argv, never in a child ------------------------------


def _run(*args: str) -> tuple[int, str]:
    from click.testing import CliRunner

    from yosai_secrets.cli import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def single(
    tmp_path: Path, postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str, Path]:
    """A role, its manifest and a reachable stand-in cluster: (manifest, role, call log)."""
    from .rotation_cluster import stub_cluster
    from .rotation_support import make_manifest

    tag = uuid.uuid4().hex[:8]
    role, password = f"app_{tag}", f"pw-{uuid.uuid4().hex}"
    _sql(postgres, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    path = make_manifest(tmp_path, DB_USER=role, DB_PASSWORD=password)
    log, _ = stub_cluster(tmp_path, monkeypatch, path)
    return path, role, log


def test_database_url_on_the_command_line_is_refused(
    single: tuple[Path, str, Path], postgres: Any, canary: str
) -> None:
    """--database-url (hidden) refuses, says to use the variable or a file, and never echoes
    what it was given; nothing is changed."""
    path, _, _ = single
    before = path.read_bytes()
    url = postgres.url(password=canary)
    code, out = _run("rotate", "--manifest", str(path), "--database-url", url)
    assert code == 2
    assert "ROTATION_DATABASE_URL" in out and "--database-url-file" in out and "ps" in out
    assert canary not in out and path.read_bytes() == before
    code, help_text = _run("rotate", "--help")
    assert "--database-url-file" in help_text and "--database-url " not in help_text


def test_database_url_file_drives_a_rotation_and_kubectl_never_sees_credentials(
    single: tuple[Path, str, Path],
    postgres: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 0600 file gives the admin connection; a 0644 one is refused; no kubectl process gets
    ROTATION_DATABASE_URL (or any other credential) in its environment."""
    import json

    path, role, log = single
    url_file = tmp_path / "admin-url"
    url_file.write_text(postgres.url() + "\n", encoding="utf-8")
    url_file.chmod(0o644)
    code, out = _run("rotate", "--manifest", str(path), "--database-url-file", str(url_file))
    assert code == 2 and "chmod 600" in out
    url_file.chmod(0o600)
    monkeypatch.setenv("KUBECTL_STUB_RECORD_ENV", "1")
    monkeypatch.setenv("ROTATION_DATABASE_URL", postgres.url())  # also in the environment
    code, out = _run("rotate", "--manifest", str(path), "--database-url-file", str(url_file))
    assert code == 0, out
    assert can_login(postgres, role, SecretManifest(path).get("DB_PASSWORD"))
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert records and all("env" in r for r in records)
    for record in records:
        assert "ROTATION_DATABASE_URL" not in record["env"]
        assert not any(name.endswith(("PASSWORD", "TOKEN")) for name in record["env"])
    assert f"--database-url-file {url_file}" in out  # the next command repeats where, not what


def test_context_is_used_for_every_call_and_shown_before_applying(
    single: tuple[Path, str, Path], postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--context NAME reaches every kubectl call; the context and namespace are printed before
    the first change; an unknown context is a clear refusal."""
    from .rotation_support import kubectl_calls

    path, _, log = single
    monkeypatch.setenv("ROTATION_DATABASE_URL", postgres.url())
    monkeypatch.setenv("KUBECTL_STUB_CONTEXTS", "staging")
    code, out = _run(
        "rotate", "--manifest", str(path), "--keys", "SECRET_KEY", "--context", "staging"
    )
    assert code == 0, out
    calls = kubectl_calls(log)
    assert calls and all("--context=staging" in call for call in calls)
    lines = out.splitlines()
    announced = lines.index(f"Applying {path} to context staging, namespace default.")
    assert announced < next(i for i, line in enumerate(lines) if line.startswith("Rotated"))
    code, out = _run("rotate", "--manifest", str(path), "--restart", "--context", "nowhere")
    assert code == 2 and "nowhere" in out


def test_setup_alternating_from_the_command_line_then_rotate_with_the_pair(
    single: tuple[Path, str, Path], postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--setup-alternating creates the second role and names the one command to go on; a
    second run changes nothing; the next rotation switches to the second role."""
    from .rotation_support import values

    path, role, _ = single
    code, out = _run("rotate", "--manifest", str(path), "--setup-alternating")
    assert code == 2 and "ROTATION_DATABASE_URL" in out  # the admin connection is needed
    monkeypatch.setenv("ROTATION_DATABASE_URL", postgres.url())
    code, out = _run("rotate", "--manifest", str(path), "--setup-alternating")
    assert code == 0, out
    assert f"created role {role}_b" in out
    assert f"Next: `yosai-secrets rotate --db-users {role},{role}_b --manifest {path}`" in out
    code, out = _run("rotate", "--manifest", str(path), "--setup-alternating")
    assert code == 0 and "nothing to do" in out.lower()
    code, out = _run("rotate", "--manifest", str(path), "--db-users", f"{role},{role}_b")
    assert code == 0, out
    assert values(path)["DB_USER"] == f"{role}_b"
    assert can_login(postgres, f"{role}_b", values(path)["DB_PASSWORD"])
    assert "Alternating users are recommended" not in out  # said only in single-role mode


def test_long_steps_show_progress_with_elapsed_time_on_a_terminal() -> None:
    """On a terminal, a step's label and its elapsed time are drawn on stderr (rich); not
    elsewhere."""
    import io

    from rich.console import Console

    from yosai_secrets.cli.rotate import _Console

    console = _Console()
    buffer = io.StringIO()
    console.console = Console(file=buffer, force_terminal=True, width=100)
    with console.progress("step apply"), console.progress("kubectl: rollout status"):
        import time

        time.sleep(0.3)
    drawn = buffer.getvalue()
    assert "step apply" in drawn and "kubectl: rollout status" in drawn and "0:00:00" in drawn
    plain = _Console()
    plain.console = Console(file=io.StringIO(), force_terminal=False)
    assert plain.progress("x").__class__.__name__ == "nullcontext"
