"""How new values reach the app: the cluster (kubectl), asked once per run, and what it holds.

A rotation decides from this, before anything irreversible, whether the new values can reach the
app in the same run; ``--finish`` asks it whether the cluster holds them (the live Secret's
values digest, a completed rollout started after the apply).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..errors import RotationError
from .manifest import DIGEST_ANNOTATION, SecretManifest
from .plan import RotationOptions
from .state import RotationState

__all__ = ["Delivery"]


class Delivery:
    """The cluster as one run sees it: whether kubectl reaches it (asked at most once).

    Args:
        options: the rotation's options (``apply``, ``kubectl``, ``announce``, ``progress``).
    """

    def __init__(self, options: RotationOptions) -> None:
        self.options = options
        self._possible: tuple[bool, str] | None = None
        self._targets: dict[str | None, str] = {}
        self._announced = False

    def __repr__(self) -> str:
        return f"Delivery(apply={self.options.apply})"

    def possible(self) -> tuple[bool, str]:
        """Whether the manifest can be applied now; if not, why (one line)."""
        if self._possible is None:
            if not self.options.apply:
                self._possible = (False, "--no-apply was given")
            else:
                self._possible = self.options.kubectl.reachable()
        return self._possible

    def describe(self, namespace: str | None) -> str:
        """``context X, namespace Y``: where an apply goes (asked once per namespace)."""
        if namespace not in self._targets:
            self._targets[namespace] = self.options.kubectl.describe_target(namespace)
        return self._targets[namespace]

    def apply(
        self, manifest: Path, deployment: str, namespace: str | None, *, restart: bool
    ) -> str:
        """Apply the manifest (and restart the deployment); return where it went.

        The context and namespace are shown (``announce``) before the first change.

        Raises:
            RotationError: a kubectl step failed (a conflict's message keeps kubectl's hint).
        """
        target = self.describe(namespace)
        if not self._announced and self.options.announce is not None:
            self.options.announce(f"Applying {manifest} to {target}.")
        self._announced = True
        label = "kubectl: apply, rollout restart and rollout status" if restart else "apply"
        with self.options.progress(f"{label} ({target})"):
            self.options.kubectl.apply_and_restart(
                manifest,
                deployment,
                namespace,
                restart=restart,
                force_conflicts=self.options.force_conflicts,
            )
        return target

    def missing(self, state: RotationState) -> list[str]:
        """What the cluster lacks for ``--finish``: the new values, a rollout after the apply.

        Raises:
            RotationError: kubectl could not read the Secret or the deployment.
        """
        problems: list[str] = []
        manifest = SecretManifest(self.options.manifest)
        names = manifest.secret_names()
        if not names:
            raise RotationError(f"the Secret in {self.options.manifest} has no metadata.name")
        name, namespace = names[0]
        label = f"kubectl: reading secret/{name} and deployment/{state.deployment}"
        with self.options.progress(label):
            live = self.options.kubectl.live_annotation(
                "secret", name, namespace, DIGEST_ANNOTATION
            )
            complete = self.options.kubectl.rollout_complete(state.deployment, state.namespace)
            restarted = self.options.kubectl.restarted_at(state.deployment, state.namespace)
        if state.digest is None or live != state.digest:
            problems.append(
                f"the live Secret {name} does not carry the new values (its {DIGEST_ANNOTATION} "
                f"annotation {'is absent' if live is None else 'differs from the manifest'})"
            )
        if not complete:
            problems.append(f"the rollout of deployment/{state.deployment} has not completed")
        elif not _not_before(restarted, state.applied_at):
            problems.append(
                f"deployment/{state.deployment} was not restarted after the new values were "
                "applied (its pods may run the old ones)"
            )
        return problems


def _not_before(stamp: str | None, reference: str | None) -> bool:
    """Whether ``stamp`` is at or after ``reference`` (RFC 3339 UTC, to the second)."""
    if stamp is None or reference is None:
        return False
    try:
        return _parse(stamp) >= _parse(reference)
    except ValueError:
        return False


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(microsecond=0)
