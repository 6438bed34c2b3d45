"""kubectl done right: field manager, conflicts, last-applied, context, environment, live state.

No Kubernetes API server can run here: these tests run the real ``Kubectl`` class against the
kubectl stand-in (``tests/kubectl_stub``), which records every call and keeps a small "cluster"
in a state file; a few edge cases use an in-process runner instead of a process.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from yosai_secrets.errors import RotationError
from yosai_secrets.rotation.kubectl import (
    FIELD_MANAGER,
    LAST_APPLIED_ANNOTATION,
    Kubectl,
    child_environment,
    later_commands,
)
from yosai_secrets.rotation.manifest import DIGEST_ANNOTATION, SecretManifest

from .rotation_support import (
    install_kubectl_stub,
    install_stateful_kubectl_stub,
    kubectl_calls,
    live_secret,
    make_manifest,
    stub_state,
)

NAME = "yosai-api-secrets"


def _rotated_manifest(tmp_path: Path) -> Path:
    """The example manifest with new values, stamps and a digest, as a rotation leaves it."""
    path = make_manifest(tmp_path, SECRET_KEY="new-signing-key-canary", DB_PASSWORD="new-db-pw")
    manifest = SecretManifest(path)
    manifest.set_annotation("SECRET_KEY", "2026-11-29T10:00:00Z")
    manifest.set_values_digest(["SECRET_KEY", "DB_PASSWORD"])
    manifest.save()
    return path


def test_apply_is_server_side_under_our_field_manager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dry run, a look for last-applied, apply, restart, status: server-side, yosai-secrets."""
    log = install_kubectl_stub(tmp_path, monkeypatch)
    path = _rotated_manifest(tmp_path)
    Kubectl().apply_and_restart(path, "yosai-api", "yosai")
    manager = f"--field-manager={FIELD_MANAGER}"
    assert kubectl_calls(log) == [
        ["apply", "--server-side", manager, "--dry-run=server", "-f", str(path)],
        ["get", "secret", NAME, "-o", "json", "--request-timeout=60s"],
        ["apply", "--server-side", manager, "-f", str(path)],
        ["rollout", "restart", "deployment/yosai-api", "--namespace=yosai"],
        ["rollout", "status", "deployment/yosai-api", "--namespace=yosai", "--timeout=300s"],
    ]
    assert not any("--force-conflicts" in call for call in kubectl_calls(log))


def test_force_conflicts_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--force-conflicts goes to the dry run and the apply only when the caller asks for it."""
    log = install_kubectl_stub(tmp_path, monkeypatch, "conflict")
    path = _rotated_manifest(tmp_path)
    with pytest.raises(RotationError):
        Kubectl().apply_and_restart(path, "yosai-api", None, restart=False)
    Kubectl().apply_and_restart(path, "yosai-api", None, restart=False, force_conflicts=True)
    applies = [call for call in kubectl_calls(log) if call[0] == "apply"]
    assert ["--force-conflicts" in call for call in applies] == [False, True, True]


def test_a_conflict_keeps_kubectls_whole_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A field conflict fails with every line kubectl wrote (fields, managers), never a value."""
    install_kubectl_stub(tmp_path, monkeypatch, "conflict")
    path = _rotated_manifest(tmp_path)
    with pytest.raises(RotationError) as caught:
        Kubectl().apply_and_restart(path, "yosai-api", None)
    message = str(caught.value)
    for line in (
        "kubectl server-side dry run failed",
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: '
        ".data.SECRET_KEY",
        "Please review the fields above--they currently have other managers.",
        "re-run the apply\n  command with the `--force-conflicts` flag.",
        "See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts",
        "run the rotation again with --force-conflicts",
    ):
        assert line in message
    assert "canary" not in message and "new-db-pw" not in message


def test_fields_owned_by_a_client_side_apply_conflict_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Secret once client-side applied: each field it owns with another value is named."""
    old = live_secret(NAME, {"SECRET_KEY": "old-key", "DB_PASSWORD": "old-pw"})
    install_stateful_kubectl_stub(tmp_path, monkeypatch, secrets=(old,))
    path = _rotated_manifest(tmp_path)
    with pytest.raises(RotationError) as caught:
        Kubectl().apply_and_restart(path, "yosai-api", None)
    message = str(caught.value)
    assert "Apply failed with 2 conflicts" in message
    assert "- .data.SECRET_KEY" in message and "- .data.DB_PASSWORD" in message
    assert "old-key" not in message and "canary" not in message


def test_last_applied_configuration_is_removed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live Secret's last-applied annotation (old values in plain text) is removed, once."""
    leaked = json.dumps({"stringData": {"SECRET_KEY": "old-key-in-plain-text"}})
    old = live_secret(
        NAME, {"SECRET_KEY": "old-key"}, annotations={LAST_APPLIED_ANNOTATION: leaked, "a": "b"}
    )
    log, state = install_stateful_kubectl_stub(tmp_path, monkeypatch, secrets=(old,))
    path = _rotated_manifest(tmp_path)
    kubectl = Kubectl()
    kubectl.apply_and_restart(path, "yosai-api", None, force_conflicts=True)
    annotate = ["annotate", "secret", NAME, f"{LAST_APPLIED_ANNOTATION}-"]
    calls = kubectl_calls(log)
    assert calls.count(annotate) == 1
    assert calls.index(annotate) < calls.index(
        [
            "apply",
            "--server-side",
            f"--field-manager={FIELD_MANAGER}",
            "--force-conflicts",
            "-f",
            str(path),
        ]
    )
    live = stub_state(state)["secrets"][f"default/{NAME}"]["object"]
    assert LAST_APPLIED_ANNOTATION not in live["metadata"]["annotations"]
    assert live["metadata"]["annotations"]["a"] == "b"
    assert "canary" not in json.dumps(live["metadata"])  # no value in the metadata
    kubectl.apply_and_restart(path, "yosai-api", None)  # now ours: no conflict, no annotate
    assert kubectl_calls(log).count(annotate) == 1


def test_the_stand_in_shows_why_the_annotation_must_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Applied while last-applied is there, the new values land in it (what kubectl does)."""
    old = live_secret(NAME, {"SECRET_KEY": "x"}, annotations={LAST_APPLIED_ANNOTATION: "{}"})
    _log, state = install_stateful_kubectl_stub(tmp_path, monkeypatch, secrets=(old,))
    path = _rotated_manifest(tmp_path)
    subprocess.run(
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(path)], check=True
    )
    live = stub_state(state)["secrets"][f"default/{NAME}"]["object"]
    assert "new-signing-key-canary" in live["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]


def test_the_context_goes_to_every_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With context=NAME, every kubectl process gets --context=NAME."""
    log, _state = install_stateful_kubectl_stub(tmp_path, monkeypatch)
    monkeypatch.setenv("KUBECTL_STUB_CONTEXTS", "prod-eu")
    path = _rotated_manifest(tmp_path)
    kubectl = Kubectl(context="prod-eu")
    assert kubectl.reachable() == (True, "")
    assert kubectl.context() == "prod-eu"
    assert kubectl.describe_target(None) == "context prod-eu, namespace default"
    kubectl.apply_and_restart(path, "yosai-api", None)
    assert kubectl.live_annotation("secret", NAME, None, DIGEST_ANNOTATION)
    assert kubectl.rollout_complete("yosai-api", None)
    calls = kubectl_calls(log)
    assert len(calls) >= 8
    assert all(call[-1] == "--context=prod-eu" for call in calls), calls


def test_an_unknown_context_fails_before_anything_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A context the kubeconfig lacks fails the dry run, naming the context."""
    log = install_kubectl_stub(tmp_path, monkeypatch)
    path = _rotated_manifest(tmp_path)
    with pytest.raises(RotationError, match='context "staging" does not exist'):
        Kubectl(context="staging").apply_and_restart(path, "yosai-api", None)
    assert len(kubectl_calls(log)) == 1


def test_current_context_and_target_are_described(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """context() reads the kubeconfig's current context; describe_target names both places."""
    log = install_kubectl_stub(tmp_path, monkeypatch, "unreachable")  # config needs no cluster
    kubectl = Kubectl()
    assert kubectl.context() == "stub-context"
    assert kubectl.describe_target("yosai") == "context stub-context, namespace yosai"
    monkeypatch.setenv("KUBECTL_STUB_NAMESPACE", "team-a")
    assert kubectl.describe_target(None) == "context stub-context, namespace team-a"
    monkeypatch.setenv("KUBECTL_STUB_CONTEXT", "")
    assert kubectl.context() is None
    assert kubectl.describe_target(None).startswith("context (none set")
    assert ["config", "current-context"] in kubectl_calls(log)
    with pytest.raises(ValueError, match="context"):
        Kubectl(context=" prod")


def test_child_environment_drops_credentials_and_keeps_the_rest() -> None:
    """Database URLs, passwords, secrets and tokens never reach kubectl; its own settings do."""
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/op",
        "KUBECONFIG": "/home/op/.kube/config",
        "AWS_PROFILE": "ops",
        "HTTPS_PROXY": "http://proxy:3128",
        "ROTATION_DATABASE_URL": "postgresql://admin:pw@db/yosai",
        "DB_PASSWORD": "x",
        "SECRET_KEY": "x",
        "VAULT_TOKEN": "x",
        "VAULT_SECRET_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_SESSION_TOKEN": "x",
        "FERNET_KEY": "x",
        "AUTH0_CLIENT_SECRET": "x",
        "REDIS_PASSWORD": "x",
        "GITHUB_TOKEN": "x",
        "webhook_secret": "x",
    }
    assert child_environment(environ) == {
        "PATH": "/usr/bin",
        "HOME": "/home/op",
        "KUBECONFIG": "/home/op/.kube/config",
        "AWS_PROFILE": "ops",
        "HTTPS_PROXY": "http://proxy:3128",
    }


def test_kubectl_processes_get_the_scrubbed_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admin database URL and the secrets in the environment never reach a kubectl process."""
    log = install_kubectl_stub(tmp_path, monkeypatch)
    monkeypatch.setenv("KUBECTL_STUB_RECORD_ENV", "1")
    monkeypatch.setenv("ROTATION_DATABASE_URL", "postgresql://admin:pw@127.0.0.1/yosai")
    monkeypatch.setenv("DB_PASSWORD", "pw")
    monkeypatch.setenv("VAULT_TOKEN", "tok")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    kubectl = Kubectl()
    kubectl.reachable()
    kubectl.apply_and_restart(_rotated_manifest(tmp_path), "yosai-api", None)
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 6
    for record in records:
        assert "KUBECONFIG" in record["env"] and "PATH" in record["env"]
        assert not {"ROTATION_DATABASE_URL", "DB_PASSWORD", "VAULT_TOKEN"} & set(record["env"])


def test_live_annotation_reads_the_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After an apply the live Secret carries the manifest's digest; a missing one reads None."""
    _log, _state = install_stateful_kubectl_stub(tmp_path, monkeypatch)
    path = _rotated_manifest(tmp_path)
    kubectl = Kubectl()
    assert kubectl.live_annotation("secret", NAME, None, DIGEST_ANNOTATION) is None
    kubectl.apply_and_restart(path, "yosai-api", None)
    recorded = SecretManifest(path).recorded_digest()
    assert recorded and recorded.startswith("sha256:")
    assert kubectl.live_annotation("secret", NAME, None, DIGEST_ANNOTATION) == recorded
    assert kubectl.live_annotation("secret", NAME, None, "absent/key") is None
    assert kubectl.live_annotation("secret", "other", None, DIGEST_ANNOTATION) is None


def test_an_unreachable_cluster_is_an_error_naming_the_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading live state from no cluster fails with the object's name, not as "absent"."""
    install_kubectl_stub(tmp_path, monkeypatch, "unreachable")
    kubectl = Kubectl()
    with pytest.raises(RotationError, match=f"secret/{NAME} in namespace yosai.*refused"):
        kubectl.live_annotation("secret", NAME, "yosai", DIGEST_ANNOTATION)
    with pytest.raises(RotationError, match=r"deployment/yosai-api.*refused"):
        kubectl.rollout_complete("yosai-api", None)


def test_rollout_completes_after_restart_and_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted deployment is not complete until its new pods are all up."""
    _log, _state = install_stateful_kubectl_stub(tmp_path, monkeypatch, namespace="yosai")
    kubectl = Kubectl()
    assert kubectl.rollout_complete("yosai-api", "yosai")
    assert kubectl.restarted_at("yosai-api", "yosai") is None
    subprocess.run(
        ["kubectl", "rollout", "restart", "deployment/yosai-api", "-n", "yosai"], check=True
    )
    assert not kubectl.rollout_complete("yosai-api", "yosai")
    assert kubectl.restarted_at("yosai-api", "yosai")
    subprocess.run(
        ["kubectl", "rollout", "status", "deployment/yosai-api", "-n", "yosai"], check=True
    )
    assert kubectl.rollout_complete("yosai-api", "yosai")
    with pytest.raises(RotationError, match="the deployment missing in namespace yosai does not"):
        kubectl.rollout_complete("missing", "yosai")


def _answering(obj: Any, returncode: int = 0, stderr: str = "") -> Any:
    """An in-process runner answering every call with ``obj`` as JSON (or text)."""

    def run(argv: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        out = obj if isinstance(obj, str) else json.dumps(obj)
        return subprocess.CompletedProcess(argv, returncode, out, stderr)

    return run


def _deployment(generation: int, observed: int, **status: int) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": observed, **status},
    }


@pytest.mark.parametrize(
    ("live", "complete"),
    [
        (_deployment(2, 2, replicas=3, updatedReplicas=3, availableReplicas=3), True),
        (_deployment(2, 1, replicas=3, updatedReplicas=3, availableReplicas=3), False),
        (_deployment(2, 2, replicas=4, updatedReplicas=3, availableReplicas=3), False),
        (_deployment(2, 2, replicas=3, updatedReplicas=2, availableReplicas=2), False),
        (_deployment(2, 2, replicas=3, updatedReplicas=3, availableReplicas=2), False),
        (
            {
                **_deployment(2, 2, replicas=3, updatedReplicas=3, availableReplicas=3),
                "status": {
                    "observedGeneration": 2,
                    "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}],
                },
            },
            False,
        ),
        ({"metadata": {"generation": 1}, "spec": {"replicas": 0}, "status": {}}, False),
        (
            {
                "metadata": {"generation": 1},
                "spec": {"replicas": 0},
                "status": {"observedGeneration": 1},
            },
            True,
        ),
    ],
)
def test_rollout_complete_decides_as_rollout_status(live: dict[str, Any], complete: bool) -> None:
    """Observed generation, updated, available and old replicas decide, as kubectl's does."""
    kubectl = Kubectl(runner=_answering(live))
    assert kubectl.rollout_complete("api", None) is complete


def test_live_state_never_leaks_kubectls_output() -> None:
    """An answer kubectl gives that is not JSON fails without repeating it."""
    kubectl = Kubectl(runner=_answering("data: canary-value"))
    with pytest.raises(RotationError) as caught:
        kubectl.live_annotation("secret", NAME, None, DIGEST_ANNOTATION)
    assert "canary" not in str(caught.value) and f"secret/{NAME}" in str(caught.value)


def test_every_live_read_is_bounded() -> None:
    """A kubectl that hangs is stopped at the timeout and named in the error."""

    def hang(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(argv, kw["timeout"])

    kubectl = Kubectl(runner=hang, request_timeout_seconds=3)
    with pytest.raises(RotationError, match="kubectl get deployment/api timed out after 3s"):
        kubectl.rollout_complete("api", None)


def test_commands_for_later_name_the_field_manager_and_context() -> None:
    """The by-hand commands apply under the same field manager and context as the tool."""
    commands = later_commands(Path("m.yaml"), "api", "yosai", context="prod", force_conflicts=True)
    assert commands[0] == (
        "kubectl apply --server-side -f m.yaml --field-manager=yosai-secrets --force-conflicts "
        "--context=prod"
    )
    assert commands[1] == "kubectl rollout restart deployment/api --namespace=yosai --context=prod"
    assert later_commands(Path("m.yaml"), "api", None)[0] == (
        "kubectl apply --server-side -f m.yaml --field-manager=yosai-secrets"
    )
