"""Rotation of PostgreSQL role passwords: durable-first ordering, kill points, alternating users.

Single-role rotations change the password only when the cluster is reachable in the same run, so
these tests run them against the kubectl stand-in's cluster (``tests/rotation_cluster.py``).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from yosai_secrets.rotation import (
    ABORT_STEPS,
    FINISH_STEPS,
    ROTATE_STEPS,
    RotationEngine,
    RotationOptions,
    parse_fallbacks,
)
from yosai_secrets.rotation.journal import Journal, journal_path
from yosai_secrets.rotation.postgres import scram_verifier

from .rotation_cluster import stub_cluster
from .rotation_support import Killed, crash_after, make_manifest, values

pytestmark = pytest.mark.integration

OLD_KEY = "old-signing-key-" + "x" * 40


def _admin(postgres: Any) -> Any:
    import psycopg

    return psycopg.connect(postgres.dsn(), autocommit=True)


def _make_role(postgres: Any, password: str | None = None) -> tuple[str, str]:
    from psycopg import sql

    name = "app_" + uuid.uuid4().hex[:10]
    password = password or secrets.token_urlsafe(24)
    with _admin(postgres) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    return name, password


def can_login(postgres: Any, role: str, password: str) -> bool:
    """Whether a brand-new connection as ``role`` with ``password`` succeeds."""
    import psycopg

    try:
        with psycopg.connect(postgres.dsn(user=role, password=password)) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def _options(path: Path, postgres: Any, **kw: Any) -> RotationOptions:
    """Options that apply to the stand-in cluster (installed by ``_setup``/``_alternating``)."""
    return RotationOptions(manifest=path, database_url=postgres.url(), environ={}, **kw)


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install the stand-in cluster for a manifest: ``cluster(path)`` -> (call log, state)."""

    def install(path: Path, mode: str = "reachable") -> tuple[Path, Path]:
        return stub_cluster(tmp_path, monkeypatch, path, mode)

    return install


def _setup(tmp_path: Path, postgres: Any) -> tuple[Path, str, str]:
    role, password = _make_role(postgres)
    path = make_manifest(tmp_path, SECRET_KEY=OLD_KEY, DB_USER=role, DB_PASSWORD=password)
    return path, role, password


def _single(tmp_path: Path, postgres: Any, cluster: Any) -> tuple[Path, str, str]:
    """One role, a manifest, and a reachable stand-in cluster holding its values."""
    path, role, password = _setup(tmp_path, postgres)
    cluster(path)
    return path, role, password


def _durable_passwords(path: Path) -> set[str]:
    """Every DB password a durable place (the manifest, the journal) holds right now."""
    held = {values(path)["DB_PASSWORD"]}
    journal = Journal.load(journal_path(path))
    if journal is not None:
        held |= {journal.data["old"]["DB_PASSWORD"], journal.data["new"]["DB_PASSWORD"]}
    return held


def test_scram_verifier_is_accepted_and_plain_text_never_reaches_the_server_log(
    tmp_path: Path, postgres: Any, cluster: Any
) -> None:
    """The role gets a SCRAM verifier computed here; the server's statement log never sees it."""
    path, role, old = _single(tmp_path, postgres, cluster)
    with _admin(postgres) as conn:
        conn.execute("ALTER ROLE postgres SET log_statement = 'all'")
    try:
        RotationEngine(_options(path, postgres)).rotate()
    finally:
        with _admin(postgres) as conn:
            conn.execute("ALTER ROLE postgres RESET log_statement")
    new = values(path)["DB_PASSWORD"]
    assert can_login(postgres, role, new)
    assert not can_login(postgres, role, old)
    log = (postgres.datadir.parent / "server.log").read_text(encoding="utf-8", errors="replace")
    assert "ALTER ROLE" in log and "SCRAM-SHA-256$" in log
    assert new not in log
    assert scram_verifier("pw", salt=b"0" * 16).startswith("SCRAM-SHA-256$4096:")


@pytest.mark.parametrize("step", ROTATE_STEPS)
def test_killed_after_each_step_rerun_converges(
    tmp_path: Path, postgres: Any, cluster: Any, step: str
) -> None:
    """Killed after any step, a durable place holds a working password; a re-run completes it."""
    path, role, old = _single(tmp_path, postgres, cluster)
    with pytest.raises(Killed):
        RotationEngine(_options(path, postgres, after_step=crash_after(step))).rotate()
    assert any(can_login(postgres, role, p) for p in _durable_passwords(path))
    journal = Journal.load(journal_path(path))
    assert journal is not None
    promised = dict(journal.data["new"])
    report = RotationEngine(_options(path, postgres)).rotate()
    assert report.outcome == "rotated" and report.resumed
    final = values(path)
    assert final["DB_PASSWORD"] == promised["DB_PASSWORD"]  # the journal's value, not a third
    assert final["SECRET_KEY"] == promised["SECRET_KEY"]
    assert parse_fallbacks(final["SECRET_KEY_FALLBACKS"]) == [OLD_KEY]
    assert can_login(postgres, role, final["DB_PASSWORD"])
    assert not can_login(postgres, role, old)


@pytest.mark.parametrize("step", ROTATE_STEPS)
def test_abort_after_each_kill_point_restores_the_old_values(
    tmp_path: Path, postgres: Any, cluster: Any, step: str
) -> None:
    """Killed after any step, --abort puts the old manifest and the old password back."""
    path, role, old = _single(tmp_path, postgres, cluster)
    original = path.read_bytes()
    with pytest.raises(Killed):
        RotationEngine(_options(path, postgres, after_step=crash_after(step))).rotate()
    journal = Journal.load(journal_path(path))
    assert journal is not None
    new = journal.data["new"]["DB_PASSWORD"]
    assert RotationEngine(_options(path, postgres)).abort().outcome == "aborted"
    assert path.read_bytes() == original
    assert can_login(postgres, role, old)
    assert not can_login(postgres, role, new)
    assert not journal_path(path).exists()


def _alternating(tmp_path: Path, postgres: Any) -> tuple[Path, str, str, str, str]:
    role_a, pw_a = _make_role(postgres)
    role_b, _ = _make_role(postgres)
    with _admin(postgres) as conn:
        from psycopg import sql

        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(role_b)))
    path = make_manifest(tmp_path, SECRET_KEY=OLD_KEY, DB_USER=role_a, DB_PASSWORD=pw_a)
    return path, role_a, pw_a, role_b, f"{role_a},{role_b}"


@pytest.mark.parametrize("step", FINISH_STEPS)
def test_finish_killed_after_each_step_rerun_converges(
    tmp_path: Path, postgres: Any, cluster: Any, step: str
) -> None:
    """A killed --finish, run again, drops the old key and the old role's password."""
    path, role_a, pw_a, role_b, pair = _alternating(tmp_path, postgres)
    cluster(path)
    RotationEngine(_options(path, postgres, db_users=pair.split(","))).rotate()
    rotated = values(path)
    assert rotated["DB_USER"] == role_b
    assert can_login(postgres, role_a, pw_a)  # the old credential works until finish
    with pytest.raises(Killed):
        RotationEngine(
            _options(
                path, postgres, db_users=pair.split(","), now=True, after_step=crash_after(step)
            )
        ).finish()
    assert can_login(postgres, role_b, values(path)["DB_PASSWORD"])  # never lost
    assert RotationEngine(_options(path, postgres)).finish().outcome == "finished"
    final = values(path)
    assert parse_fallbacks(final["SECRET_KEY_FALLBACKS"]) == []
    assert final["DB_USER"] == role_b and final["DB_PASSWORD"] == rotated["DB_PASSWORD"]
    assert can_login(postgres, role_b, final["DB_PASSWORD"])
    assert not can_login(postgres, role_a, pw_a)
    assert not journal_path(path).exists()


@pytest.mark.parametrize("step", ABORT_STEPS)
def test_abort_killed_after_each_step_rerun_converges(
    tmp_path: Path, postgres: Any, cluster: Any, step: str
) -> None:
    """A killed --abort, run again, completes the roll-back (alternating users)."""
    path, role_a, pw_a, role_b, pair = _alternating(tmp_path, postgres)
    cluster(path)
    original = path.read_bytes()
    RotationEngine(_options(path, postgres, db_users=pair.split(","))).rotate()
    new = values(path)["DB_PASSWORD"]
    with pytest.raises(Killed):
        RotationEngine(_options(path, postgres, after_step=crash_after(step))).abort()
    assert RotationEngine(_options(path, postgres)).abort().outcome == "aborted"
    assert path.read_bytes() == original
    assert can_login(postgres, role_a, pw_a)
    assert not can_login(postgres, role_b, new)


@pytest.mark.slow
@pytest.mark.parametrize("step", ROTATE_STEPS)
def test_sigkilled_process_is_resumed(
    tmp_path: Path, postgres: Any, cluster: Any, step: str
) -> None:
    """A real SIGKILL after any step: a durable place holds a working password; a re-run ends it."""
    path, role, old = _single(tmp_path, postgres, cluster)
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from yosai_secrets.rotation import RotationEngine, RotationOptions\n"
        "def hook(step):\n"
        "    if step == sys.argv[2]:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "RotationEngine(RotationOptions(manifest=Path(sys.argv[1]), environ=os.environ,\n"
        "    after_step=hook)).rotate()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRET", "ROTATION_"))}
    env["ROTATION_DATABASE_URL"] = postgres.url()  # never on a command line
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), step],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    journal = Journal.load(journal_path(path))
    assert journal is not None and journal.done_steps()[-1] == step
    new = journal.data["new"]["DB_PASSWORD"]
    assert any(can_login(postgres, role, p) for p in _durable_passwords(path))
    RotationEngine(_options(path, postgres)).rotate()
    assert values(path)["DB_PASSWORD"] == new
    assert can_login(postgres, role, new) and not can_login(postgres, role, old)
    assert parse_fallbacks(values(path)["SECRET_KEY_FALLBACKS"]) == [OLD_KEY]


def test_failed_login_test_promotes_nothing(tmp_path: Path, postgres: Any, cluster: Any) -> None:
    """If the new password cannot log in, nothing is promoted or restarted; --abort restores all."""
    from yosai_secrets.errors import RotationError

    path, role, old = _setup(tmp_path, postgres)
    log, _ = cluster(path)
    with _admin(postgres) as conn:
        from psycopg import sql

        conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
    original = path.read_bytes()
    with pytest.raises(RotationError, match="nothing was promoted"):
        RotationEngine(_options(path, postgres)).rotate()
    journal = Journal.load(journal_path(path))
    assert journal is not None and "store-promote" not in journal.done_steps()
    assert "rollout" not in log.read_text(encoding="utf-8")  # no pod got the new password
    RotationEngine(_options(path, postgres)).abort()
    assert path.read_bytes() == original
    with _admin(postgres) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role)))
    assert can_login(postgres, role, old)


class _Pods:
    """Clients that log in in a loop with the credentials they loaded at their last restart."""

    def __init__(self, postgres: Any, path: Path, count: int = 3) -> None:
        self.postgres, self.path = postgres, path
        self.generation = 0
        self.seen = [0] * count
        self.attempts = [0] * count
        self.ok = 0
        self.failed = 0
        self.stop = threading.Event()
        self.changed = threading.Condition()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(count)]

    def _run(self, index: int) -> None:
        import psycopg

        creds = values(self.path)
        while not self.stop.is_set():
            generation = self.generation
            if self.seen[index] != generation:  # a rollout restart: reload the Secret
                creds = values(self.path)
                with self.changed:
                    self.seen[index] = generation
                    self.changed.notify_all()
            try:
                with psycopg.connect(
                    self.postgres.dsn(user=creds["DB_USER"], password=creds["DB_PASSWORD"])
                ) as conn:
                    conn.execute("SELECT 1")
                succeeded = True
            except psycopg.OperationalError:
                succeeded = False
            with self.changed:
                if succeeded:
                    self.ok += 1
                else:
                    self.failed += 1
                self.attempts[index] += 1
                self.changed.notify_all()

    def _wait(self, predicate: Any, what: str) -> None:
        with self.changed:
            # Each step takes milliseconds; the bound only turns a hang into a failure.
            if not self.changed.wait_for(predicate, timeout=60):
                raise AssertionError(f"the pods never {what}")

    def restart(self) -> None:
        """Like ``rollout restart`` + ``rollout status``: returns once every pod reloaded."""
        with self.changed:
            self.generation += 1
            generation = self.generation
        self._wait(lambda: all(seen == generation for seen in self.seen), "reloaded the Secret")

    def log_in(self, times: int = 5) -> None:
        """Return once every pod has logged in ``times`` more times with what it has loaded."""
        with self.changed:
            targets = [done + times for done in self.attempts]
        self._wait(
            lambda: all(done >= t for done, t in zip(self.attempts, targets, strict=True)),
            f"logged in {times} more times",
        )

    def __enter__(self) -> _Pods:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def test_alternating_users_rotation_under_load_has_no_failed_login(
    tmp_path: Path, postgres: Any
) -> None:
    """Clients logging in throughout three alternating-users rotations never fail once."""
    path, _, _, role_b, pair = _alternating(tmp_path, postgres)
    users = pair.split(",")
    with _Pods(postgres, path) as pods:
        pods.log_in()
        for _ in range(3):
            options = _options(path, postgres, db_users=users, apply=False)
            report = RotationEngine(options).rotate()
            assert report.outcome == "rotated"  # alternating users: no hold without a cluster
            pods.log_in()  # the old pods keep logging in with the old role meanwhile
            pods.restart()
            pods.log_in()
            options.now = options.skip_cluster_check = True  # the pods here are not a cluster
            RotationEngine(options).finish()
        pods.log_in()
    print(f"\nalternating users under load: {pods.ok} logins, {pods.failed} failed")
    assert pods.ok > 50
    assert pods.failed == 0
    assert values(path)["DB_USER"] == role_b  # a, b, a, b: three switches from a


def test_refused_admin_login_names_no_password(tmp_path: Path, postgres: Any, canary: str) -> None:
    """A wrong admin password fails before anything is written, and the message hides it."""
    from yosai_secrets.errors import YosaiSecretsError

    path, _, _ = _setup(tmp_path, postgres)
    original = path.read_bytes()
    bad_url = postgres.url(user="postgres", password=canary)
    options = RotationOptions(manifest=path, apply=False, database_url=bad_url, environ={})
    with pytest.raises(YosaiSecretsError) as caught:
        RotationEngine(options).rotate()
    assert "password authentication failed" in str(caught.value)
    assert canary not in str(caught.value)
    assert path.read_bytes() == original and not journal_path(path).exists()
