"""Apply the rotated manifest with ``kubectl`` and restart the deployment that uses it.

Server-side apply only: client-side ``kubectl apply`` copies the whole manifest, ``stringData`` in
plain text included, into the ``last-applied-configuration`` annotation, readable by anyone who may
read the Secret's metadata. Pods see a changed Secret only when restarted (environment variables and
``subPath`` mounts never update), hence ``rollout restart`` and ``rollout status``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from ..errors import RotationError

__all__ = ["DEFAULT_DEPLOYMENT", "Kubectl", "later_commands"]

#: The deployment in ``k8s/deployment.yaml`` that loads the Secret.
DEFAULT_DEPLOYMENT: Final = "yosai-api"

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def later_commands(manifest: Path, deployment: str, namespace: str | None) -> list[str]:
    """The commands an operator runs to apply the manifest and restart the pods by hand."""
    ns = f" --namespace={namespace}" if namespace else ""
    return [
        f"kubectl apply --server-side -f {manifest}",
        f"kubectl rollout restart deployment/{deployment}{ns}",
        f"kubectl rollout status deployment/{deployment}{ns} --timeout=300s",
    ]


class Kubectl:
    """A bounded, non-interactive ``kubectl``.

    Args:
        executable: the program to run (default ``kubectl`` found on PATH).
        check_timeout_seconds: how long the "can we reach a cluster" check may take.
        rollout_timeout_seconds: how long ``rollout status`` waits for the new pods.
        runner: ``subprocess.run`` or a stand-in.
    """

    def __init__(
        self,
        executable: str = "kubectl",
        *,
        check_timeout_seconds: float = 5.0,
        rollout_timeout_seconds: float = 300.0,
        runner: Runner = subprocess.run,
    ) -> None:
        self.executable = executable
        self.check_timeout_seconds = check_timeout_seconds
        self.rollout_timeout_seconds = rollout_timeout_seconds
        self._run = runner

    def path(self) -> str | None:
        """The kubectl program's path, or None when it is not installed."""
        return shutil.which(self.executable)

    def reachable(self) -> tuple[bool, str]:
        """Whether kubectl is installed and reaches a cluster; if not, why (one line)."""
        program = self.path()
        if program is None:
            return False, "kubectl is not installed (not on PATH)"
        timeout = max(1, int(self.check_timeout_seconds))
        try:
            done = self._run(
                [program, "version", f"--request-timeout={timeout}s"],
                capture_output=True,
                text=True,
                timeout=self.check_timeout_seconds + 5,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return False, f"kubectl did not reach a cluster within {timeout}s"
        except OSError as exc:
            return False, f"kubectl could not run: {exc.strerror}"
        if done.returncode != 0:
            lines = [ln for ln in (done.stderr or "").splitlines() if ln.strip()]
            detail = lines[-1].strip() if lines else f"exit status {done.returncode}"
            return False, f"kubectl cannot reach a cluster ({detail})"
        return True, ""

    def apply_and_restart(
        self, manifest: Path, deployment: str, namespace: str | None, *, restart: bool = True
    ) -> None:
        """Validate (server-side dry run), apply server-side, restart and wait for the rollout.

        Raises:
            RotationError: a kubectl step failed; the message names it (never a value).
        """
        program = self.path() or self.executable
        ns = [f"--namespace={namespace}"] if namespace else []
        steps: list[tuple[str, list[str]]] = [
            (
                "server-side dry run",
                [program, "apply", "--server-side", "--dry-run=server", "-f", str(manifest)],
            ),
            ("apply", [program, "apply", "--server-side", "-f", str(manifest)]),
        ]
        if restart:
            timeout = f"--timeout={int(self.rollout_timeout_seconds)}s"
            steps += [
                (
                    "rollout restart",
                    [program, "rollout", "restart", f"deployment/{deployment}", *ns],
                ),
                (
                    "rollout status",
                    [program, "rollout", "status", f"deployment/{deployment}", *ns, timeout],
                ),
            ]
        for name, argv in steps:
            self._step(name, argv)

    def _step(self, name: str, argv: Sequence[str]) -> None:
        budget = self.rollout_timeout_seconds + 30 if "rollout" in argv else 120.0
        try:
            done = self._run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=budget,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise RotationError(f"kubectl {name} timed out after {int(budget)}s") from None
        if done.returncode != 0:
            # kubectl's stderr names objects and fields, not values; keep its last line only.
            lines = [ln for ln in (done.stderr or "").splitlines() if ln.strip()]
            detail = lines[-1].strip() if lines else f"exit status {done.returncode}"
            raise RotationError(f"kubectl {name} failed: {detail}")
