"""`yosai-secrets rotate` and `status`, and the rotation script, with kubectl stood in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from yosai_secrets.cli import cli
from yosai_secrets.rotation import parse_fallbacks
from yosai_secrets.rotation.manifest import SecretManifest

from .rotation_cluster import stub_cluster
from .rotation_support import (
    EXAMPLE,
    REPO_ROOT,
    applied_manifests,
    install_kubectl_stub,
    kubectl_calls,
    make_manifest,
    values,
)

ROTATED = ("SECRET_KEY", "SECRET_KEY_FALLBACKS", "DB_PASSWORD")
HELD = 3
APPLY = ["apply", "--server-side", "--field-manager=yosai-secrets"]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _assert_done_when(before: dict[str, str], after: dict[str, str]) -> None:
    assert after["SECRET_KEY"] != before["SECRET_KEY"]
    assert after["DB_PASSWORD"] != before["DB_PASSWORD"]
    kept = [] if before["SECRET_KEY"].startswith("replace-me") else [before["SECRET_KEY"]]
    assert parse_fallbacks(after["SECRET_KEY_FALLBACKS"]) == kept
    assert {k: v for k, v in after.items() if k not in ROTATED} == {
        k: v for k, v in before.items() if k not in ROTATED
    }


def test_script_from_a_clean_checkout_stages_and_holds(tmp_path: Path) -> None:
    """From a checkout with only the example and no database, the script creates and fills the
    manifest, keeps no placeholder as a fallback key, and holds (exit 3) naming what to do."""
    checkout = tmp_path / "checkout"
    (checkout / "k8s" / "config").mkdir(parents=True)
    shutil.copy(EXAMPLE, checkout / "k8s" / "config" / EXAMPLE.name)
    (checkout / "scripts").mkdir()
    shutil.copy(REPO_ROOT / "scripts" / "rotate_secrets.py", checkout / "scripts")
    (checkout / "src").symlink_to(REPO_ROOT / "src")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECTL_STUB", "ROTATION_"))}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "scripts/rotate_secrets.py"],
        cwd=checkout,
        env={**env, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == HELD, done.stderr
    assert elapsed < 20
    manifest = checkout / "k8s" / "config" / "api-secrets.yaml"
    assert oct(manifest.stat().st_mode & 0o777) == "0o600"
    _assert_done_when(SecretManifest(EXAMPLE).values(), values(manifest))
    assert parse_fallbacks(values(manifest)["SECRET_KEY_FALLBACKS"]) == []  # no placeholder
    assert "no database admin connection is configured" in done.stdout
    assert "Next: `yosai-secrets rotate --restart`" in done.stdout


def test_script_works_when_the_package_is_not_installed(tmp_path: Path) -> None:
    """Without the installed package (no .pth processing) the script finds ../src itself."""
    root = make_manifest(tmp_path).parent.parent.parent
    site = next(p for p in sys.path if p.endswith("site-packages"))
    probe = subprocess.run(
        [sys.executable, "-S", "-c", "import yosai_secrets"],
        env={"PYTHONPATH": site, "PATH": os.environ["PATH"]},
        capture_output=True,
        check=False,
    )
    assert probe.returncode != 0  # really not importable this way
    done = subprocess.run(
        [sys.executable, "-S", str(REPO_ROOT / "scripts" / "rotate_secrets.py"), "--no-apply"],
        cwd=root,
        env={"PYTHONPATH": site, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == HELD, done.stderr
    assert "Staged SECRET_KEY, DB_PASSWORD" in done.stdout


def test_reachable_cluster_gets_exactly_the_server_side_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a reachable cluster: version check, where it goes, dry run, apply, restart, status."""
    log = install_kubectl_stub(tmp_path, monkeypatch, "reachable")
    path = make_manifest(tmp_path)
    code, out = _run("rotate", "--manifest", str(path), "--keys", "SECRET_KEY")
    assert code == 0, out
    assert kubectl_calls(log) == [
        ["version", "--request-timeout=5s"],
        ["config", "current-context"],
        ["config", "view", "--minify", "-o", "jsonpath={..namespace}"],
        [*APPLY, "--dry-run=server", "-f", str(path)],
        ["get", "secret", "yosai-api-secrets", "-o", "json", "--request-timeout=60s"],
        [*APPLY, "-f", str(path)],
        ["rollout", "restart", "deployment/yosai-api"],
        ["rollout", "status", "deployment/yosai-api", "--timeout=300s"],
    ]
    (applied,) = applied_manifests(log)
    assert values(path)["SECRET_KEY"] in applied  # the cluster got the new value
    assert "Applying" in out and "context stub-context, namespace default" in out
    assert "applied server-side, deployment restarted" in out


def test_deployment_name_comes_from_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ROTATION_DEPLOYMENT names the deployment that is restarted."""
    log = install_kubectl_stub(tmp_path, monkeypatch, "reachable")
    monkeypatch.setenv("ROTATION_DEPLOYMENT", "dashboard")
    path = make_manifest(tmp_path)
    code, _ = _run("rotate", "--manifest", str(path), "--keys", "SECRET_KEY")
    assert code == 0
    assert ["rollout", "restart", "deployment/dashboard"] in kubectl_calls(log)


@pytest.mark.parametrize("mode", ["no-apply", "unreachable"])
def test_no_apply_call_without_apply_or_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """--no-apply makes no kubectl call; an unreachable cluster only gets the bounded check."""
    log = install_kubectl_stub(tmp_path, monkeypatch, "unreachable")
    path = make_manifest(tmp_path)
    args = ["rotate", "--manifest", str(path), "--keys", "SECRET_KEY"]
    code, out = _run(*args, "--no-apply") if mode == "no-apply" else _run(*args)
    assert code == 0, out  # SECRET_KEY alone locks nobody out: rotated, not applied
    calls = kubectl_calls(log)
    assert calls == ([] if mode == "no-apply" else [["version", "--request-timeout=5s"]])
    assert "The manifest was not applied to the cluster:" in out
    assert "Next: `yosai-secrets rotate --restart" in out
    assert "Done: prepare, manifest, invalidate." in out  # apply is not listed as done


def test_failed_apply_is_resumed_by_running_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rejected apply fails the run (exit 2), keeps the journal, and a re-run completes it."""
    log = install_kubectl_stub(tmp_path, monkeypatch, "fail-apply")
    path = make_manifest(tmp_path)
    code, out = _run("rotate", "--manifest", str(path), "--keys", "SECRET_KEY")
    assert code == 2 and "kubectl apply failed" in out
    rotated = values(path)["SECRET_KEY"]
    monkeypatch.setenv("KUBECTL_STUB_MODE", "reachable")
    code, out = _run("rotate", "--manifest", str(path), "--keys", "SECRET_KEY")
    assert code == 0, out
    assert "Resumed" in out
    assert values(path)["SECRET_KEY"] == rotated  # the same new value, not another one
    assert rotated in applied_manifests(log)[-1]


def test_without_a_database_the_rotation_holds_for_the_operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No database connection: nothing reaches the cluster (exit 3) until --restart, which
    applies and restarts; --finish then checks the cluster and, with --now, finishes."""
    path = make_manifest(tmp_path)
    log, _ = stub_cluster(tmp_path, monkeypatch, path)
    before = values(path)
    code, out = _run("rotate", "--manifest", str(path))
    assert code == HELD, out
    assert "cannot change the role's password" in out and "--restart" in out
    assert kubectl_calls(log) == []  # the app gets nothing before the operator acted
    _assert_done_when(before, values(path))
    code, out = _run("rotate", "--manifest", str(path), "--restart")
    assert code == 0, out
    assert ["rollout", "restart", "deployment/yosai-api"] in kubectl_calls(log)
    code, out = _run("rotate", "--manifest", str(path), "--finish")
    assert code == 2 and "sessions signed with the old SECRET_KEY may be valid until" in out
    code, out = _run("rotate", "--manifest", str(path), "--finish", "--now")
    assert code == 0, out
    assert parse_fallbacks(values(path)["SECRET_KEY_FALLBACKS"]) == []
    assert not path.with_name(path.name + ".journal.json").exists()


def test_abort_restores_the_file_byte_for_byte(tmp_path: Path) -> None:
    """--abort after a rotation puts back every value and annotation: the file is as before."""
    path = make_manifest(tmp_path)
    original = path.read_bytes()
    assert _run("rotate", "--manifest", str(path), "--no-apply")[0] == HELD
    assert path.read_bytes() != original
    code, out = _run("rotate", "--manifest", str(path), "--abort")
    assert code == 0, out
    assert path.read_bytes() == original
    assert _run("rotate", "--manifest", str(path), "--abort")[1].startswith("No rotation")


def test_dry_run_writes_nothing_and_shows_no_value(tmp_path: Path, canary: str) -> None:
    """--dry-run changes no file, creates no journal and prints masked values only."""
    path = make_manifest(tmp_path, SECRET_KEY=canary, DB_PASSWORD=canary + "-db")
    original = path.read_bytes()
    code, out = _run("rotate", "--manifest", str(path), "--dry-run")
    assert code == HELD, out  # what the real run would exit: held, no database connection
    assert path.read_bytes() == original
    assert not path.with_name(path.name + ".journal.json").exists()
    assert canary not in out and "********" in out and "SECRET_KEY" in out
    code, out = _run("rotate", "--manifest", str(path), "--dry-run", "--json")
    assert code == HELD and canary not in out
    report = json.loads(out)
    assert report["dry_run"] and report["outcome"] == "awaiting-operator"


def test_no_value_reaches_any_output(tmp_path: Path, canary: str) -> None:
    """Neither old nor new values appear in the output of rotate, --json, status or --finish."""
    path = make_manifest(tmp_path, SECRET_KEY=canary, DB_PASSWORD=canary + "-db")
    outputs = [_run("rotate", "--manifest", str(path), "--no-apply")[1]]
    outputs.append(_run("rotate", "--manifest", str(path), "--dry-run", "--restart")[1])
    outputs.append(_run("rotate", "--manifest", str(path), "--restart", "--json")[1])
    new = values(path)
    outputs.append(_run("status", "--manifest", str(path), "--json")[1])
    outputs.append(_run("rotate", "--manifest", str(path), "--finish", "--no-apply")[1])
    finish = ("--finish", "--no-apply", "--now", "--skip-cluster-check", "--json")
    outputs.append(_run("rotate", "--manifest", str(path), *finish)[1])
    joined = "\n".join(outputs)
    for secret in (canary, new["SECRET_KEY"], new["DB_PASSWORD"]):
        assert secret not in joined


def test_status_reports_against_the_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """status exits 1 for never-rotated or overdue secrets, 0 when all are within the policy."""
    path = make_manifest(tmp_path)
    keys = ("--keys", "SECRET_KEY,DB_PASSWORD")
    code, out = _run("status", "--manifest", str(path), *keys)
    assert code == 1 and "never" in out
    _run("rotate", "--manifest", str(path), "--no-apply")
    _run("rotate", "--manifest", str(path), "--restart")  # the operator changed it by hand
    code, out = _run("status", "--manifest", str(path), *keys, "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"] and report["max_age_days"] == 90
    assert {s["key"] for s in report["secrets"]} == {"SECRET_KEY", "DB_PASSWORD"}
    manifest = SecretManifest(path)
    old = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest.set_annotation("DB_PASSWORD", old)
    manifest.save()
    assert _run("status", "--manifest", str(path), *keys)[0] == 0
    monkeypatch.setenv("ROTATION_MAX_AGE_DAYS", "30")
    code, out = _run("status", "--manifest", str(path), *keys)
    assert code == 1 and "overdue" in out and "DB_PASSWORD" in out


def test_two_runs_never_interleave(tmp_path: Path) -> None:
    """While one run holds the manifest's rotation lock, another refuses to start."""
    from yosai_secrets.rotation.journal import exclusive, journal_path

    path = make_manifest(tmp_path)
    original = path.read_bytes()
    with exclusive(journal_path(path)):
        code, out = _run("rotate", "--manifest", str(path), "--no-apply")
    assert code == 2 and "another rotation" in out
    assert path.read_bytes() == original
    assert _run("rotate", "--manifest", str(path), "--no-apply")[0] == HELD


def test_rollout_commands_use_the_manifests_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Secret with a namespace gets its deployment restarted in that namespace."""
    log = install_kubectl_stub(tmp_path, monkeypatch, "reachable")
    path = make_manifest(tmp_path)
    text = path.read_text(encoding="utf-8").replace(
        "  name: yosai-api-secrets\n", "  name: yosai-api-secrets\n  namespace: yosai\n"
    )
    path.write_text(text, encoding="utf-8")
    code, out = _run("rotate", "--manifest", str(path), "--keys", "SECRET_KEY")
    assert code == 0, out
    calls = kubectl_calls(log)
    assert calls[-2] == ["rollout", "restart", "deployment/yosai-api", "--namespace=yosai"]
    assert calls[-1][:4] == ["rollout", "status", "deployment/yosai-api", "--namespace=yosai"]
    assert "namespace yosai" in out
