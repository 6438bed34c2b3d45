"""Nothing irreversible before delivery: holds, `--restart`'s order, conflicts, and the running
app's logins measured throughout, against the real PostgreSQL and the stand-in cluster."""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from yosai_secrets.cli import cli
from yosai_secrets.rotation import RotationEngine, RotationOptions
from yosai_secrets.rotation.journal import Journal, journal_path

from .rotation_cluster import LoginLoop, live_values, restart_stamp, stub_cluster
from .rotation_support import kubectl_calls, make_manifest, values
from .test_rotation_postgres import can_login

OLD_KEY = "old-signing-key-" + "x" * 40
HELD = 3


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _role(postgres: Any) -> tuple[str, str]:
    import psycopg
    from psycopg import sql

    name, password = "app_" + uuid.uuid4().hex[:10], secrets.token_urlsafe(24)
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    return name, password


@pytest.fixture
def single(
    tmp_path: Path, postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str, str, Path, Path]:
    """One role the app logs in as, its manifest, the stand-in cluster (reachable) holding the
    manifest's values, and the admin connection in ROTATION_DATABASE_URL."""
    role, password = _role(postgres)
    path = make_manifest(tmp_path, SECRET_KEY=OLD_KEY, DB_USER=role, DB_PASSWORD=password)
    log, state = stub_cluster(tmp_path, monkeypatch, path)
    monkeypatch.setenv("ROTATION_DATABASE_URL", postgres.url())
    return path, role, password, log, state


def test_held_single_role_rotation_changes_no_password_and_fails_no_login(
    postgres: Any,
    single: tuple[Path, str, str, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    canary: str,
) -> None:
    """With no cluster, 16 pods logging in see no failure while the rotation stages and holds
    (exit 3); `--restart` where the cluster is reachable then delivers it."""
    path, role, old, _, state = single
    monkeypatch.setenv("KUBECTL_STUB_MODE", "unreachable")
    with LoginLoop(postgres, state, threads=16) as pods:
        code, out = _run("rotate", "--manifest", str(path))
        pods.wait_for(200)
        held_ok, held_failed = pods.ok, pods.failed
        assert code == HELD, out
        assert "has a single password" in out and "password is unchanged" in out
        assert f"Next: `yosai-secrets rotate --restart --manifest {path}`" in out
        assert can_login(postgres, role, old)  # untouched
        new = values(path)["DB_PASSWORD"]
        assert new != old and live_values(state)["DB_PASSWORD"] == old  # staged, not applied
        monkeypatch.setenv("KUBECTL_STUB_MODE", "reachable")
        code, out = _run("rotate", "--manifest", str(path), "--restart")
        assert code == 0, out
        pods.wait_for(200)
    print(
        f"\nheld single-role rotation, 16 pods: {held_ok} logins, {held_failed} failed; "
        f"then --restart: {pods.ok - held_ok} logins, {pods.failed - held_failed} failed "
        "(between ALTER ROLE and the restart)"
    )
    assert held_failed == 0
    assert live_values(state)["DB_PASSWORD"] == new and can_login(postgres, role, new)
    assert not can_login(postgres, role, old)
    assert canary not in out and new not in out


def test_restart_applies_the_secret_changes_the_password_then_restarts(
    postgres: Any, single: tuple[Path, str, str, Path, Path]
) -> None:
    """A held rotation continued by --restart: the Secret reaches the cluster first (no pod
    restarted), then ALTER ROLE, then the rollout restart, with nothing in between."""
    path, role, old, _, state = single
    seen: dict[str, tuple[bool, bool, str | None]] = {}

    def hook(step: str) -> None:
        new = Journal.load(journal_path(path)).state.new["DB_PASSWORD"]  # type: ignore[union-attr]
        seen[step] = (
            live_values(state)["DB_PASSWORD"] == new,
            can_login(postgres, role, new),
            restart_stamp(state),
        )

    options = RotationOptions(manifest=path, apply=False, environ={"ROTATION_DATABASE_URL": ""})
    options.database_url = postgres.url()
    assert RotationEngine(options).rotate().outcome == "awaiting-operator"
    options.apply, options.after_step = True, hook
    report = RotationEngine(options).restart()
    assert report.outcome == "rotated" and report.restarted
    assert report.steps == ["apply-secret", "db-set", "db-test", "invalidate", "apply"]
    assert seen["apply-secret"] == (True, False, None)  # applied; password and pods unchanged
    assert seen["db-set"] == (True, True, None)  # the password changed; no restart yet
    assert seen["apply"][:2] == (True, True) and seen["apply"][2] is not None
    assert not can_login(postgres, role, old)


def test_conflict_before_the_password_change_leaves_it_untouched(
    postgres: Any, single: tuple[Path, str, str, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 409 from the apply stops the run before ALTER ROLE, keeps kubectl's hint and says how to
    go on; --force-conflicts then completes it with the same new values."""
    path, role, old, log, _ = single
    monkeypatch.setenv("KUBECTL_STUB_MODE", "conflict")
    code, out = _run("rotate", "--manifest", str(path))
    assert code == 2, out
    assert "conflict" in out and "--force-conflicts" in out
    assert "Please review the fields above" in out  # kubectl's own explanation
    assert can_login(postgres, role, old)
    promised = values(path)["DB_PASSWORD"]
    assert not can_login(postgres, role, promised)
    assert not any(call[:2] == ["rollout", "restart"] for call in kubectl_calls(log))
    code, out = _run("rotate", "--manifest", str(path), "--force-conflicts")
    assert code == 0, out
    assert can_login(postgres, role, promised) and not can_login(postgres, role, old)
    assert "--force-conflicts" in [c for c in kubectl_calls(log) if c[0] == "apply"][-1]


def test_no_apply_holds_a_single_role_and_help_documents_the_held_status(
    postgres: Any, single: tuple[Path, str, str, Path, Path]
) -> None:
    """--no-apply with one role: no kubectl call, no password change, exit 3, as --help says."""
    path, role, old, log, _ = single
    code, out = _run("rotate", "--manifest", str(path), "--no-apply")
    assert code == HELD, out
    assert kubectl_calls(log) == [] and can_login(postgres, role, old)
    assert "--no-apply was given" in out
    code, help_text = _run("rotate", "--help")
    assert code == 0 and "3  held" in help_text


def test_alternating_users_under_load_over_five_cycles_fail_no_login(
    tmp_path: Path, postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 pods logging in through five rotate / restart / finish cycles of alternating users:
    no login fails."""
    role_a, pw_a = _role(postgres)
    monkeypatch.setenv("ROTATION_DATABASE_URL", postgres.url())
    path = make_manifest(tmp_path, SECRET_KEY=OLD_KEY, DB_USER=role_a, DB_PASSWORD=pw_a)
    _, state = stub_cluster(tmp_path, monkeypatch, path)
    code, out = _run("rotate", "--manifest", str(path), "--setup-alternating")
    assert code == 0, out
    role_b = role_a + "_b"
    with LoginLoop(postgres, state, threads=16) as pods:
        for _ in range(5):
            code, out = _run("rotate", "--manifest", str(path), "--db-users", f"{role_a},{role_b}")
            assert code == 0, out
            pods.wait_for(100)
            code, out = _run("rotate", "--manifest", str(path), "--finish", "--now")
            assert code == 0, out
            pods.wait_for(100)
    print(f"\nalternating users, 16 pods, 5 cycles: {pods.ok} logins, {pods.failed} failed")
    assert pods.failed == 0 and pods.ok > 1000
    assert values(path)["DB_USER"] == role_b  # a, b, a, b, a, b: five switches from a


# -- the dry run predicts the run ---------------------------------------------------------------

STATES = ["fresh", "held", "held-reachable", "rotated", "finished"]
ACTIONS = {
    "rotate": (),
    "restart": ("--restart",),
    "finish": ("--finish", "--now"),
    "abort": ("--abort",),
}


def _bring_to(state: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if state in ("held", "held-reachable"):
        monkeypatch.setenv("KUBECTL_STUB_MODE", "unreachable")
        assert _run("rotate", "--manifest", str(path))[0] == HELD
        if state == "held-reachable":
            monkeypatch.setenv("KUBECTL_STUB_MODE", "reachable")
    elif state in ("rotated", "finished"):
        assert _run("rotate", "--manifest", str(path))[0] == 0
        if state == "finished":
            assert _run("rotate", "--manifest", str(path), "--finish", "--now")[0] == 0


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("state", STATES)
def test_dry_run_predicts_the_steps_and_exit_status_of_the_run(
    single: tuple[Path, str, str, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    state: str,
    action: str,
) -> None:
    """In each state, --dry-run lists the steps the run then does (and those it skips), ends
    with the same status, and refuses with the same message."""
    path = single[0]
    _bring_to(state, path, monkeypatch)
    before = path.read_bytes()
    args = ("rotate", "--manifest", str(path), *ACTIONS[action])
    code, out = _run(*args, "--dry-run", "--json")
    assert path.read_bytes() == before  # the dry run wrote nothing
    predicted = json.loads(out)
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert code == result.exit_code == predicted["exit_code"], (out, result.output)
    if code == 2:
        assert f"error: {predicted['refusal']}" in result.output
        return
    actual = json.loads(result.stdout)
    for field in ("outcome", "steps", "skipped", "held_reason", "next_command"):
        assert predicted[field] == actual[field], field


def test_no_value_reaches_any_output_of_a_single_role_rotation(
    tmp_path: Path, postgres: Any, monkeypatch: pytest.MonkeyPatch, canary: str
) -> None:
    """Held, predicted, continued, refused, finished: no old or new value in any output."""
    import psycopg
    from psycopg import sql

    role = "app_" + uuid.uuid4().hex[:10]
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(canary + "-db")
            )
        )
    path = make_manifest(tmp_path, SECRET_KEY=canary, DB_USER=role, DB_PASSWORD=canary + "-db")
    stub_cluster(tmp_path, monkeypatch, path, mode="unreachable")
    monkeypatch.setenv("ROTATION_DATABASE_URL", postgres.url())
    outputs = [_run("rotate", "--manifest", str(path))[1]]
    new = values(path)
    monkeypatch.setenv("KUBECTL_STUB_MODE", "reachable")
    for args in (
        ("--restart", "--dry-run"),
        ("--restart", "--json"),
        ("--finish",),
        ("--finish", "--now", "--dry-run", "--json"),
        ("--finish", "--now", "--json"),
    ):
        outputs.append(_run("rotate", "--manifest", str(path), *args)[1])
    joined = "\n".join(outputs)
    for secret in (canary, new["SECRET_KEY"], new["DB_PASSWORD"], postgres.password):
        assert secret not in joined


def test_abort_of_a_delivered_single_role_needs_the_cluster(
    postgres: Any, single: tuple[Path, str, str, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the cluster runs the new password, --abort without a cluster refuses (the old
    password back would lock the app out); with the cluster it restores and re-applies both."""
    path, role, old, _, state = single
    assert _run("rotate", "--manifest", str(path))[0] == 0
    new = values(path)["DB_PASSWORD"]
    monkeypatch.setenv("KUBECTL_STUB_MODE", "unreachable")
    code, out = _run("rotate", "--manifest", str(path), "--abort")
    assert code == 2 and "would lock the app out" in out
    assert can_login(postgres, role, new) and not can_login(postgres, role, old)
    monkeypatch.setenv("KUBECTL_STUB_MODE", "reachable")
    code, out = _run("rotate", "--manifest", str(path), "--abort")
    assert code == 0, out
    assert can_login(postgres, role, old) and live_values(state)["DB_PASSWORD"] == old
