"""Apply the rotated manifest with ``kubectl`` and restart the deployment that uses it.

Server-side apply only, under the field manager ``yosai-secrets``: client-side ``kubectl apply``
copies the whole manifest, ``stringData`` in plain text included, into the
``kubectl.kubernetes.io/last-applied-configuration`` annotation, readable by anyone who may read the
Secret's metadata; and kubectl keeps rewriting that annotation on every later apply, server-side
ones included, as long as it is there. So a live Secret that carries it has it removed once
(``kubectl annotate ... KEY-``) before the apply. Pods see a changed Secret only when restarted
(environment variables and ``subPath`` mounts never update), hence ``rollout restart`` and
``rollout status``.

Every kubectl process gets ``--context=NAME`` when one was chosen, is bounded by a timeout, reads
no standard input, and runs in an environment without the tool's own credentials
(:func:`child_environment`). kubectl's output is parsed (``-o json``) or summarised, never printed:
a ``get secret`` answer holds every value of the Secret.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from ..errors import RotationError

__all__ = [
    "DEFAULT_DEPLOYMENT",
    "FIELD_MANAGER",
    "LAST_APPLIED_ANNOTATION",
    "Kubectl",
    "child_environment",
    "later_commands",
]

#: The deployment in ``k8s/deployment.yaml`` that loads the Secret.
DEFAULT_DEPLOYMENT: Final = "yosai-api"

#: The server-side apply field manager: the fields this tool sets are owned under this name.
FIELD_MANAGER: Final = "yosai-secrets"

#: Where a client-side ``kubectl apply`` once copied the whole manifest, values included.
LAST_APPLIED_ANNOTATION: Final = "kubectl.kubernetes.io/last-applied-configuration"

#: Variables never passed to a kubectl process (credentials of the tool itself, not of kubectl).
SCRUBBED_VARIABLES: Final = frozenset(
    {
        "ROTATION_DATABASE_URL",
        "DATABASE_URL",
        "DB_PASSWORD",
        "SECRET_KEY",
        "SECRET_KEY_FALLBACKS",
        "VAULT_TOKEN",
        "VAULT_SECRET_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "FERNET_KEY",
        "AUTH0_CLIENT_SECRET",
    }
)
_SCRUBBED_SUFFIXES: Final = ("PASSWORD", "SECRET", "TOKEN", "_DATABASE_URL")

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a kubectl process gets: ``environ`` without the tool's credentials.

    Drops :data:`SCRUBBED_VARIABLES` and every name ending in ``PASSWORD``, ``SECRET``, ``TOKEN``
    or ``_DATABASE_URL`` (any case); keeps the rest (``PATH``, ``HOME``, ``KUBECONFIG``, proxies,
    ``AWS_PROFILE``...). kubectl needs none of the dropped ones: its credentials come from the
    kubeconfig (an exec plugin such as ``aws eks get-token`` should use a profile, not variables).
    """
    return {
        name: value
        for name, value in environ.items()
        if name.upper() not in SCRUBBED_VARIABLES and not name.upper().endswith(_SCRUBBED_SUFFIXES)
    }


def later_commands(
    manifest: Path,
    deployment: str,
    namespace: str | None,
    *,
    context: str | None = None,
    force_conflicts: bool = False,
) -> list[str]:
    """The commands an operator runs to apply the manifest and restart the pods by hand."""
    ns = f" --namespace={namespace}" if namespace else ""
    ctx = f" --context={context}" if context else ""
    force = " --force-conflicts" if force_conflicts else ""
    return [
        f"kubectl apply --server-side -f {manifest} --field-manager={FIELD_MANAGER}{force}{ctx}",
        f"kubectl rollout restart deployment/{deployment}{ns}{ctx}",
        f"kubectl rollout status deployment/{deployment}{ns}{ctx} --timeout=300s",
    ]


class Kubectl:
    """A bounded, non-interactive ``kubectl``.

    Args:
        executable: the program to run (default ``kubectl`` found on PATH).
        context: the kubeconfig context for every call (``--context=NAME``); None uses the
            kubeconfig's current context.
        check_timeout_seconds: how long the "can we reach a cluster" check may take.
        rollout_timeout_seconds: how long ``rollout status`` waits for the new pods.
        request_timeout_seconds: how long any other call (apply, get, annotate) may take.
        runner: ``subprocess.run`` or a stand-in.
        environ: the environment kubectl's own is made from (default: this process's, when a
            call is made), scrubbed by :func:`child_environment`.

    Raises:
        ValueError: ``context`` is empty or spans lines.
    """

    def __init__(
        self,
        executable: str = "kubectl",
        *,
        context: str | None = None,
        check_timeout_seconds: float = 5.0,
        rollout_timeout_seconds: float = 300.0,
        request_timeout_seconds: float = 60.0,
        runner: Runner = subprocess.run,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if context is not None and (not context.strip() or context != context.strip()):
            raise ValueError("the kubectl context must be a non-empty name without spaces around")
        if context is not None and any(c in context for c in "\r\n\0"):
            raise ValueError("the kubectl context must be one line")
        self.executable = executable
        self._context = context
        self.check_timeout_seconds = check_timeout_seconds
        self.rollout_timeout_seconds = rollout_timeout_seconds
        self.request_timeout_seconds = request_timeout_seconds
        self._run = runner
        self._environ = environ

    def __repr__(self) -> str:
        return f"Kubectl({self.executable!r}, context={self._context!r})"

    def path(self) -> str | None:
        """The kubectl program's path, or None when it is not installed."""
        return shutil.which(self.executable)

    # -- where ------------------------------------------------------------------------------------

    def reachable(self) -> tuple[bool, str]:
        """Whether kubectl is installed and reaches a cluster; if not, why (one line)."""
        program = self.path()
        if program is None:
            return False, "kubectl is not installed (not on PATH)"
        timeout = max(1, int(self.check_timeout_seconds))
        try:
            done = self._call(
                ["version", f"--request-timeout={timeout}s"], self.check_timeout_seconds + 5
            )
        except subprocess.TimeoutExpired:
            return False, f"kubectl did not reach a cluster within {timeout}s"
        except OSError as exc:
            return False, f"kubectl could not run: {exc.strerror}"
        if done.returncode != 0:
            return False, f"kubectl cannot reach a cluster ({_last_line(done)})"
        return True, ""

    def context(self) -> str | None:
        """The context kubectl uses: the one given, else the kubeconfig's current context.

        None when no context is set (kubectl then falls back to ``localhost:8080``) or kubectl
        cannot tell (not installed, broken kubeconfig).
        """
        if self._context is not None:
            return self._context
        done = self._query(["config", "current-context"], self.check_timeout_seconds)
        name = done.stdout.strip() if done is not None and done.returncode == 0 else ""
        return name or None

    def describe_target(self, namespace: str | None) -> str:
        """``"context X, namespace Y"``: where an apply goes, for the operator to read first.

        Without a namespace, the context's default namespace (``default`` when it sets none).
        """
        context = self.context()
        if not namespace:
            done = self._query(
                ["config", "view", "--minify", "-o", "jsonpath={..namespace}"],
                self.check_timeout_seconds,
            )
            found = done.stdout.strip() if done is not None and done.returncode == 0 else ""
            namespace = found.split()[0] if found else "default"
        where = context if context else "(none set: kubectl's default, localhost:8080)"
        return f"context {where}, namespace {namespace}"

    # -- apply ------------------------------------------------------------------------------------

    def apply_and_restart(
        self,
        manifest: Path,
        deployment: str,
        namespace: str | None,
        *,
        restart: bool = True,
        force_conflicts: bool = False,
    ) -> None:
        """Validate (server-side dry run), apply server-side, restart and wait for the rollout.

        Between the dry run and the apply, each Secret of the manifest that carries the
        ``last-applied-configuration`` annotation (values in plain text) has it removed.

        Args:
            manifest: the Secret manifest.
            deployment: the deployment to restart.
            namespace: the deployment's namespace (None: the context's).
            restart: restart the deployment and wait for its rollout.
            force_conflicts: take over fields another field manager owns (``--force-conflicts``);
                only when the operator asked for it.

        Raises:
            RotationError: a kubectl step failed; the message names it (never a value). On a
                field conflict it holds kubectl's whole explanation (fields and managers).
        """
        apply = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}"]
        if force_conflicts:
            apply.append("--force-conflicts")
        self._step("server-side dry run", [*apply, "--dry-run=server", "-f", str(manifest)])
        self.remove_last_applied(manifest)
        self._step("apply", [*apply, "-f", str(manifest)])
        if restart:
            ns = [f"--namespace={namespace}"] if namespace else []
            timeout = f"--timeout={int(self.rollout_timeout_seconds)}s"
            self._step("rollout restart", ["rollout", "restart", f"deployment/{deployment}", *ns])
            self._step(
                "rollout status",
                ["rollout", "status", f"deployment/{deployment}", *ns, timeout],
                timeout_seconds=self.rollout_timeout_seconds + 30,
            )

    def remove_last_applied(self, manifest: Path) -> list[str]:
        """Remove ``last-applied-configuration`` from the manifest's live Secrets that have it.

        Returns the Secrets it was removed from (``namespace/name``, or ``name``).

        Raises:
            RotationError: a Secret could not be read or changed.
        """
        from .manifest import SecretManifest

        removed: list[str] = []
        for name, namespace in SecretManifest(manifest).secret_names():
            live = self.live_object("secret", name, namespace)
            if live is None or LAST_APPLIED_ANNOTATION not in _annotations(live):
                continue
            ns = [f"--namespace={namespace}"] if namespace else []
            self._step(
                f"removal of {LAST_APPLIED_ANNOTATION} from secret/{name}",
                ["annotate", "secret", name, f"{LAST_APPLIED_ANNOTATION}-", *ns],
            )
            removed.append(f"{namespace}/{name}" if namespace else name)
        return removed

    # -- what the cluster has ---------------------------------------------------------------------

    def live_object(self, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        """The live object (``kubectl get KIND NAME -o json``), or None when it does not exist.

        The answer may hold secret values: it is parsed, never printed or put in a message.

        Raises:
            RotationError: kubectl failed otherwise (unreachable, forbidden, timed out) or did
                not answer a JSON object; the message names the object.
        """
        what = f"{kind}/{name}" + (f" in namespace {namespace}" if namespace else "")
        timeout = max(1, int(self.request_timeout_seconds))
        argv = ["get", kind, name, "-o", "json", f"--request-timeout={timeout}s"]
        if namespace:
            argv.append(f"--namespace={namespace}")
        try:
            done = self._call(argv, self.request_timeout_seconds + 5)
        except subprocess.TimeoutExpired:
            raise RotationError(f"kubectl get {what} timed out after {timeout}s") from None
        except OSError as exc:
            raise RotationError(f"kubectl get {what} could not run: {exc.strerror}") from None
        if done.returncode != 0:
            if "(NotFound)" in (done.stderr or ""):
                return None
            raise RotationError(f"kubectl get {what} failed: {_last_line(done)}")
        try:
            parsed = json.loads(done.stdout)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise RotationError(f"kubectl get {what} did not answer a JSON object")
        return parsed

    def live_annotation(self, kind: str, name: str, namespace: str | None, key: str) -> str | None:
        """The annotation ``key`` of the live object, or None when it (or the object) is absent.

        Raises:
            RotationError: the object could not be read (see :meth:`live_object`).
        """
        live = self.live_object(kind, name, namespace)
        value = _annotations(live).get(key) if live is not None else None
        return value if isinstance(value, str) else None

    def rollout_complete(self, deployment: str, namespace: str | None) -> bool:
        """Whether the deployment's latest rollout completed, as ``kubectl rollout status`` decides.

        Complete: the controller observed the latest spec (``status.observedGeneration >=
        metadata.generation``) and every replica is updated and available, none of the old ones
        left (``updatedReplicas == availableReplicas == replicas == spec.replicas``). A rollout
        past its progress deadline is not complete.

        Raises:
            RotationError: the deployment does not exist or could not be read.
        """
        live = self._deployment(deployment, namespace)
        meta, spec, status = (_mapping(live.get(k)) for k in ("metadata", "spec", "status"))
        if _int(status.get("observedGeneration")) < _int(meta.get("generation")):
            return False
        for condition in status.get("conditions") or []:
            if (
                _mapping(condition).get("type") == "Progressing"
                and _mapping(condition).get("reason") == "ProgressDeadlineExceeded"
            ):
                return False
        wanted = _int(spec.get("replicas"), default=1)
        updated = _int(status.get("updatedReplicas"))
        return (
            updated >= wanted
            and _int(status.get("replicas")) <= updated
            and _int(status.get("availableReplicas")) >= updated
        )

    def restarted_at(self, deployment: str, namespace: str | None) -> str | None:
        """When ``rollout restart`` last restarted the deployment, or None if it never did.

        Read from the pod template's ``kubectl.kubernetes.io/restartedAt`` annotation: a
        finished rollout that started before the apply still runs pods with the old values.

        Raises:
            RotationError: the deployment does not exist or could not be read.
        """
        live = self._deployment(deployment, namespace)
        template = _mapping(_mapping(live.get("spec")).get("template"))
        value = _annotations(template).get("kubectl.kubernetes.io/restartedAt")
        return value if isinstance(value, str) else None

    # -- internals --------------------------------------------------------------------------------

    def _deployment(self, deployment: str, namespace: str | None) -> dict[str, Any]:
        live = self.live_object("deployment", deployment, namespace)
        if live is None:
            where = f" in namespace {namespace}" if namespace else ""
            raise RotationError(f"the deployment {deployment}{where} does not exist")
        return live

    def _call(
        self, args: Sequence[str], timeout_seconds: float
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.path() or self.executable, *args]
        if self._context is not None:
            argv.append(f"--context={self._context}")
        environ = os.environ if self._environ is None else self._environ
        return self._run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_seconds,
            check=False,
            stdin=subprocess.DEVNULL,
            env=child_environment(environ),
        )

    def _query(
        self, args: Sequence[str], timeout_seconds: float
    ) -> subprocess.CompletedProcess[str] | None:
        """A call whose failure only means "unknown"."""
        try:
            return self._call(args, timeout_seconds)
        except (subprocess.TimeoutExpired, OSError):
            return None

    def _step(self, name: str, args: Sequence[str], *, timeout_seconds: float = 0.0) -> None:
        budget = timeout_seconds or self.request_timeout_seconds
        try:
            done = self._call(args, budget)
        except subprocess.TimeoutExpired:
            raise RotationError(f"kubectl {name} timed out after {int(budget)}s") from None
        except OSError as exc:
            raise RotationError(f"kubectl {name} could not run: {exc.strerror}") from None
        if done.returncode == 0:
            return
        stderr = done.stderr or ""
        # A conflict's message names the fields and their managers (never a value) and says how
        # to resolve it: keep all of it.
        lines = "\n".join(ln.rstrip() for ln in stderr.splitlines() if ln.strip())
        lowered = stderr.lower()
        if "apply failed with" in lowered or "conflict with" in lowered:
            raise RotationError(
                f"kubectl {name} failed: another field manager owns fields this manifest sets "
                f"with other values.\n{lines}\nTo take those fields over, run the rotation "
                "again with --force-conflicts."
            )
        if "conflict" in lowered or "409" in lowered:
            raise RotationError(f"kubectl {name} failed with a conflict (409):\n{lines}")
        raise RotationError(f"kubectl {name} failed: {_last_line(done)}")


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    # kubectl's other errors name objects and fields, not values; its last line says what failed.
    lines = [ln for ln in (done.stderr or "").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else f"exit status {done.returncode}"


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _annotations(obj: Mapping[str, Any]) -> dict[str, Any]:
    return _mapping(_mapping(obj.get("metadata")).get("annotations"))


def _int(value: object, *, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
