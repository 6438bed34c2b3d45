"""Helpers shared by the rotation tests: a manifest to rotate, the kubectl stand-in, crash hooks."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from yosai_secrets.rotation.manifest import SecretManifest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "k8s" / "config" / "api-secrets.example.yaml"
STUB = Path(__file__).resolve().parent / "kubectl_stub"


class Killed(BaseException):
    """Stands for the process dying: no ``except Exception`` and no cleanup code sees it."""


def crash_after(step: str):  # type: ignore[no-untyped-def]
    """An ``after_step`` hook that "kills" the run once ``step`` is durable."""

    def hook(done: str) -> None:
        if done == step:
            raise Killed(step)

    return hook


def make_manifest(root: Path, **overrides: str) -> Path:
    """Copy the shipped example to ``root/k8s/config/api-secrets.yaml``, with values overridden."""
    target = root / "k8s" / "config" / "api-secrets.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE, target.with_name(EXAMPLE.name))
    shutil.copy(EXAMPLE, target)
    if overrides:
        manifest = SecretManifest(target)
        for key, value in overrides.items():
            manifest.set(key, value)
        manifest.save()
    target.chmod(0o600)
    return target


def values(path: Path) -> dict[str, str]:
    """Every key's plain value in the manifest at ``path``."""
    return SecretManifest(path).values()


def install_kubectl_stub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str = "reachable"
) -> Path:
    """Put the kubectl stand-in first on PATH; return the file its calls are logged to."""
    bindir = tmp_path / "stub-bin"
    bindir.mkdir(exist_ok=True)
    wrapper = bindir / "kubectl"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STUB}" "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    log = tmp_path / "kubectl-calls.jsonl"
    log.touch()
    monkeypatch.setenv("PATH", f"{bindir}:{__import__('os').environ.get('PATH', '')}")
    monkeypatch.setenv("KUBECTL_STUB_LOG", str(log))
    monkeypatch.setenv("KUBECTL_STUB_MODE", mode)
    return log


def kubectl_calls(log: Path) -> list[list[str]]:
    """The argument lists kubectl was called with, in order (without the program name)."""
    lines = log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["argv"] for line in lines if line.strip()]


def applied_manifests(log: Path) -> list[str]:
    """The manifest texts the stand-in "cluster" received through ``apply`` (dry runs excluded)."""
    out = []
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "manifest" in record and "--dry-run=server" not in record["argv"]:
            out.append(record["manifest"])
    return out


def install_stateful_kubectl_stub(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str = "reachable",
    *,
    deployments: tuple[str, ...] = ("yosai-api",),
    namespace: str = "default",
    secrets: tuple[dict[str, object], ...] = (),
) -> tuple[Path, Path]:
    """The kubectl stand-in with a "cluster" in a state file; return (call log, state file).

    The cluster holds ``deployments`` (2 replicas each, rolled out) in ``namespace`` and the given
    live Secret entries (see :func:`live_secret`).
    """
    log = install_kubectl_stub(tmp_path, monkeypatch, mode)
    state = tmp_path / "kubectl-state.json"
    cluster: dict[str, dict[str, object]] = {"secrets": {}, "deployments": {}}
    for name in deployments:
        cluster["deployments"][f"{namespace}/{name}"] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"replicas": 2, "template": {"metadata": {}}},
            "status": {
                "observedGeneration": 1,
                "replicas": 2,
                "updatedReplicas": 2,
                "readyReplicas": 2,
                "availableReplicas": 2,
            },
        }
    for entry in secrets:
        obj = entry["object"]
        assert isinstance(obj, dict)
        meta = obj["metadata"]
        cluster["secrets"][f"{meta.get('namespace', namespace)}/{meta['name']}"] = entry
    state.write_text(json.dumps(cluster, indent=2), encoding="utf-8")
    monkeypatch.setenv("KUBECTL_STUB_STATE", str(state))
    return log, state


def live_secret(
    name: str,
    values: dict[str, str],
    *,
    namespace: str = "default",
    annotations: dict[str, str] | None = None,
    manager: str = "kubectl-client-side-apply",
) -> dict[str, object]:
    """A live Secret entry for the stand-in's state: its object and its data keys' field manager."""
    data = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    return {
        "object": {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "annotations": dict(annotations or {}),
            },
            "type": "Opaque",
            "data": data,
        },
        "owners": dict.fromkeys(values, manager),
    }


def stub_state(state: Path) -> dict[str, Any]:
    """The stand-in cluster's current state."""
    loaded: dict[str, Any] = json.loads(state.read_text(encoding="utf-8"))
    return loaded


def sighup_listener() -> subprocess.Popen[str]:
    """A process that SIGHUP ends (its default action), started and ready to receive it.

    The default is set explicitly and announced: a shell started under `nohup` (or a CI runner)
    may pass SIGHUP on as ignored, and a signal sent before the handler is set would be lost.
    """
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGHUP, signal.SIG_DFL)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    child.stdout.close()
    return child


def session_app() -> Any:
    """A Flask app with the extension and two views: log in (as alice), and who am I."""
    from flask import Flask, session

    from yosai_secrets.flask import YosaiSecrets

    app = Flask(__name__)
    YosaiSecrets(app)

    @app.post("/login")
    def login() -> str:
        session["user"] = "alice"
        return "ok"

    @app.get("/me")
    def me() -> str:
        return str(session.get("user", "anonymous"))

    return app


def session_cookie(app: Any) -> str:
    """The session cookie ``app`` signs when alice logs in."""
    client = app.test_client()
    client.post("/login")
    cookie = client.get_cookie("session")
    assert cookie is not None
    return str(cookie.value)
