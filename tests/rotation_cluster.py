"""Helpers for the rotation tests that need "the app": a stand-in cluster and pods logging in.

The kubectl stand-in (``tests/kubectl_stub``) keeps its "cluster" in a state file. The pods here
read their credentials from that cluster's live Secret, and only when the deployment restarts
(a new ``kubectl.kubernetes.io/restartedAt``): what pods reading the Secret through environment
variables see. So a test measures exactly what a rotation does to a running app.
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .rotation_support import install_stateful_kubectl_stub, live_secret, stub_state, values


def stub_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manifest: Path, mode: str = "reachable"
) -> tuple[Path, Path]:
    """A stand-in cluster whose live Secret holds ``manifest``'s values (applied by
    ``yosai-secrets``, as after an earlier rotation); return (kubectl call log, state file)."""
    secret = live_secret("yosai-api-secrets", values(manifest), manager="yosai-secrets")
    return install_stateful_kubectl_stub(tmp_path, monkeypatch, mode, secrets=(secret,))


def live_values(state: Path) -> dict[str, str]:
    """The live Secret's values in the stand-in cluster (decoded)."""
    obj = stub_state(state)["secrets"]["default/yosai-api-secrets"]["object"]
    return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}


def restart_stamp(state: Path) -> str | None:
    """The deployment's last ``rollout restart`` time in the stand-in cluster."""
    deployment = stub_state(state)["deployments"]["default/yosai-api"]
    template = deployment["spec"].get("template", {}).get("metadata", {})
    return template.get("annotations", {}).get("kubectl.kubernetes.io/restartedAt")


class LoginLoop:
    """Pods logging in to PostgreSQL in a loop with what the cluster gave them at their start.

    Each thread is a pod: it loads the live Secret's ``DB_USER``/``DB_PASSWORD`` when it starts
    and again after each rollout restart (it polls the stand-in cluster's state, as the kubelet
    would replace it), and logs in every ``pause_seconds``.
    """

    def __init__(
        self, postgres: Any, state: Path, *, threads: int = 16, pause_seconds: float = 0.02
    ) -> None:
        self.postgres, self.state = postgres, state
        self.pause_seconds = pause_seconds
        self.ok = 0
        self.failed = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._pod, daemon=True) for _ in range(threads)]

    def _pod(self) -> None:
        import psycopg

        stamp, creds = self._load()
        while not self.stop.is_set():
            now_stamp = restart_stamp(self.state)
            if now_stamp != stamp:  # the deployment restarted: a new pod, the live Secret
                stamp, creds = self._load()
            try:
                dsn = self.postgres.dsn(user=creds["DB_USER"], password=creds["DB_PASSWORD"])
                with psycopg.connect(dsn) as conn:
                    conn.execute("SELECT 1")
                succeeded = True
            except psycopg.OperationalError:
                succeeded = False
            with self.lock:
                self.ok += succeeded
                self.failed += not succeeded
            time.sleep(self.pause_seconds)

    def _load(self) -> tuple[str | None, dict[str, str]]:
        for _ in range(50):  # the stand-in rewrites its state file atomically; retry a torn read
            try:
                return restart_stamp(self.state), live_values(self.state)
            except ValueError:
                time.sleep(0.01)
        raise AssertionError("the stand-in cluster's state file stays unreadable")

    def wait_for(self, logins: int) -> None:
        """Return once ``logins`` more logins were attempted."""
        with self.lock:
            target = self.ok + self.failed + logins
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with self.lock:
                if self.ok + self.failed >= target:
                    return
            time.sleep(0.01)
        raise AssertionError(f"the pods did not log in {logins} more times")

    def __enter__(self) -> LoginLoop:
        for thread in self.threads:
            thread.start()
        self.wait_for(len(self.threads) * 2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
