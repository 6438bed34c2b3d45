"""`--finish` only finishes what the cluster has: the live Secret's values digest, a rollout
after the apply, and sessions signed with the old key expired; otherwise it refuses, saying why."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from yosai_secrets.cli import cli
from yosai_secrets.rotation import RotationEngine, RotationOptions
from yosai_secrets.rotation.journal import Journal, journal_path
from yosai_secrets.rotation.manifest import DIGEST_ANNOTATION, SecretManifest

from .rotation_cluster import stub_cluster
from .rotation_support import make_manifest, stub_state, values

OLD_KEY = "old-signing-key-" + "y" * 40


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def rotated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """SECRET_KEY rotated and delivered to the stand-in cluster: (manifest, cluster state)."""
    path = make_manifest(tmp_path, SECRET_KEY=OLD_KEY)
    _, state = stub_cluster(tmp_path, monkeypatch, path)
    code, out = _run("rotate", "--manifest", str(path), "--keys", "SECRET_KEY")
    assert code == 0, out
    return path, state


def _edit_state(state: Path, change: Any) -> None:
    data = stub_state(state)
    change(data)
    state.write_text(json.dumps(data), encoding="utf-8")


def test_the_live_secret_carries_the_manifests_digest(rotated: tuple[Path, Path]) -> None:
    """The apply put the manifest's values digest on the live Secret, never a value."""
    path, state = rotated
    live = stub_state(state)["secrets"]["default/yosai-api-secrets"]["object"]["metadata"]
    digest = SecretManifest(path).recorded_digest()
    assert digest and digest.startswith("sha256:")
    assert live["annotations"][DIGEST_ANNOTATION] == digest
    journal = Journal.load(journal_path(path))
    assert journal is not None and journal.state.digest == digest
    assert journal.state.applied_at is not None


def test_finish_waits_for_the_session_lifetime_unless_now(
    rotated: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after the apply, --finish refuses and names the time; after the lifetime (or with
    --now) it finishes."""
    path, _ = rotated
    monkeypatch.setenv("PERMANENT_SESSION_LIFETIME", "3600")
    code, out = _run("rotate", "--manifest", str(path), "--finish")
    assert code == 2 and "sessions signed with the old SECRET_KEY may be valid until" in out
    assert "after 20" in out and "--now finishes anyway" in out
    later = datetime.now(UTC) + timedelta(seconds=3700)
    options = RotationOptions(manifest=path, environ={"PERMANENT_SESSION_LIFETIME": "3600"})
    options.clock = lambda: later
    report = RotationEngine(options).finish()
    assert report.outcome == "finished" and report.restarted


def test_finish_refuses_when_the_live_secret_lacks_the_new_values(
    rotated: tuple[Path, Path],
) -> None:
    """A live Secret whose digest is not the manifest's: refused, naming it; --restart fixes it."""
    path, state = rotated

    def forget(data: dict[str, Any]) -> None:
        meta = data["secrets"]["default/yosai-api-secrets"]["object"]["metadata"]
        meta["annotations"][DIGEST_ANNOTATION] = "sha256:" + "0" * 64

    _edit_state(state, forget)
    code, out = _run("rotate", "--manifest", str(path), "--finish", "--now")
    assert code == 2
    assert "the live Secret yosai-api-secrets does not carry the new values" in out
    assert f"Run `yosai-secrets rotate --restart --manifest {path}`, then --finish" in out
    assert _run("rotate", "--manifest", str(path), "--restart")[0] == 0
    assert _run("rotate", "--manifest", str(path), "--finish", "--now")[0] == 0


def test_finish_refuses_while_the_rollout_is_incomplete(rotated: tuple[Path, Path]) -> None:
    """A rollout the controller has not completed: refused, naming the deployment."""
    path, state = rotated

    def roll(data: dict[str, Any]) -> None:
        deployment = data["deployments"]["default/yosai-api"]
        deployment["metadata"]["generation"] += 1

    _edit_state(state, roll)
    code, out = _run("rotate", "--manifest", str(path), "--finish", "--now")
    assert code == 2 and "the rollout of deployment/yosai-api has not completed" in out
    assert values(path)["SECRET_KEY_FALLBACKS"] != "[]"  # nothing dropped


@pytest.mark.parametrize(
    ("flags", "code", "said"),
    [
        (("--no-apply",), 2, "cannot check that the cluster has the new values"),
        (("--no-apply", "--now"), 2, "cannot check that the cluster has the new values"),
        (("--no-apply", "--skip-cluster-check"), 2, "give --now as well"),
        (("--no-apply", "--now", "--skip-cluster-check"), 0, "Finished the rotation"),
    ],
    ids=["no-apply", "now-only", "skip-only", "now-and-skip"],
)
def test_without_the_cluster_only_now_and_skip_cluster_check_finish(
    rotated: tuple[Path, Path], flags: tuple[str, ...], code: int, said: str
) -> None:
    """Without kubectl, --finish refuses unless both --now and --skip-cluster-check are given."""
    path, _ = rotated
    got, out = _run("rotate", "--manifest", str(path), "--finish", *flags)
    assert got == code and said in out, out
    assert "password" not in out.lower()  # no warning about changing a role's password


def test_unreachable_cluster_refuses_finish(
    rotated: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster kubectl cannot reach is treated like --no-apply: run it where it is reachable."""
    path, _ = rotated
    monkeypatch.setenv("KUBECTL_STUB_MODE", "unreachable")
    code, out = _run("rotate", "--manifest", str(path), "--finish", "--now")
    assert code == 2 and "where kubectl reaches the cluster" in out


def test_bad_session_lifetime_is_a_clear_error(
    rotated: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PERMANENT_SESSION_LIFETIME must be a positive number of seconds."""
    path, _ = rotated
    monkeypatch.setenv("PERMANENT_SESSION_LIFETIME", "31d")
    code, out = _run("rotate", "--manifest", str(path), "--finish")
    assert code == 2 and "PERMANENT_SESSION_LIFETIME='31d' is not a positive number" in out
