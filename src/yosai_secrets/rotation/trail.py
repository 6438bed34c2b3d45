"""The audit trail of rotation runs, and what an incident may resume.

Every run that changes something (rotate, ``--restart``, ``--finish``, ``--abort``, an incident)
is recorded with :func:`yosai_secrets.audit.events.emit_operation` when it starts and when it
ends: who ran it (user, host, process), why (``RotationOptions.reason``, the CLI's ``--reason``),
the keys, the outcome and the steps. Names only, never a value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..errors import RotationError, YosaiSecretsError
from .plan import RotationOptions
from .report import RotationReport
from .schedule import command
from .state import RotationPhase, RotationState

__all__ = ["recorded", "refuse_routine", "rotating"]


def recorded(
    action: str, options: RotationOptions, run: Callable[[], RotationReport]
) -> RotationReport:
    """Run ``action``, recorded when it starts and when it ends (or fails: the error's type)."""
    name = "rotate" if action == "rotate" else f"rotate-{action}"
    keys = list(options.keys or [])
    _record(name, keys, options, "started")
    try:
        report = run()
    except YosaiSecretsError as exc:
        _record(name, keys, options, "failed", {"error": type(exc).__name__})
        raise
    details = {"steps": list(report.steps), "store": report.store}
    _record(name, report.keys, options, str(report.outcome), details)
    return report


def rotating(phase: RotationPhase) -> bool:
    """Whether a journal in ``phase`` still has rotate steps to run (or is held before them)."""
    return phase in (RotationPhase.ROTATE, RotationPhase.AWAITING_OPERATOR)


def refuse_routine(state: RotationState, phase: RotationPhase, options: RotationOptions) -> None:
    """An incident resumes only an incident: a routine rotation is aborted or finished first.

    Raises:
        RotationError: the open rotation is a routine one (its values may be the leaked ones).
    """
    if state.incident:
        return
    raise RotationError(
        f"a routine rotation of {', '.join(state.keys)} is open (phase {phase}): its values may "
        f"be the leaked ones. Run `{command(options, '--abort')}` (or finish it with "
        f"`{command(options, '--finish --now')}`), then run the incident again"
    )


def _record(
    action: str,
    keys: list[str],
    options: RotationOptions,
    outcome: str,
    details: Mapping[str, object] | None = None,
) -> None:
    from ..audit.events import emit_operation

    emit_operation(
        action, keys=keys, reason=options.reason or None, outcome=outcome, details=details
    )
