"""What a run will do, decided before it acts: the steps, where it holds, or why it refuses.

One function per command turns the journal's state and the cluster's reachability into a
:class:`Schedule`; the engine runs exactly that schedule and ``--dry-run`` prints it, so the
prediction and the run cannot drift apart. The rules:

* **Nothing irreversible before delivery.** With one role (its only password changes) the
  password changes only when the new values can reach the app in the same run: the Secret is
  applied first (running pods do not see it until they restart, and a rejected apply leaves the
  password untouched), then ``ALTER ROLE``, then the restart. When kubectl cannot reach the cluster
  (or ``--no-apply``), the run writes the manifest, stages the store, and holds (exit 3);
  ``rotate --restart`` from where the cluster is reachable goes on. A password this tool cannot
  change itself (no admin connection) holds too, until the operator changed it.
* **Finish only what the cluster has** (see :func:`plan_finish`).
* **An incident has no grace** (``RotationState.incident``): a single role's password changes
  even when the cluster is unreachable (the new values are durable first, and the report says how
  they reach the app), ``db-cut`` ends the leaked credential's sessions, and the finish follows
  in the same run without waiting for old sessions to expire.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .delivery import Delivery
from .plan import DB_PASSWORD_KEY, RotationOptions, session_lifetime_seconds
from .report import Outcome
from .state import (
    ABORT_STEPS,
    FINISH_STEPS,
    ROTATE_STEPS,
    DbMode,
    RotationPhase,
    RotationState,
    Step,
)

__all__ = [
    "Schedule",
    "command",
    "finish_after",
    "plan_abort",
    "plan_finish",
    "plan_restart",
    "plan_rotate",
]

#: The first step after which the app may depend on the new values: a hold stops before it.
HOLD_POINT = Step.APPLY_SECRET


@dataclass
class Schedule:
    """One run's plan: the steps in order (each is effective or skipped, with why), the outcome."""

    steps: list[Step] = field(default_factory=list)
    outcome: Outcome = Outcome.NOTHING_TO_DO
    skipped: dict[Step, str] = field(default_factory=dict)
    held_reason: str = ""
    refusal: str = ""  # the run refuses (exit 2) with this message; nothing is done
    next_command: str = ""

    @property
    def exit_code(self) -> int:
        """0 done, 2 refused, 3 held (the rotation waits for ``rotate --restart``)."""
        if self.refusal:
            return 2
        return 3 if self.outcome is Outcome.AWAITING_OPERATOR else 0

    def effective(self) -> list[Step]:
        """The steps that will change something (the rest are only recorded as done)."""
        return [s for s in self.steps if s not in self.skipped]


def command(options: RotationOptions, flag: str = "") -> str:
    """The single command to run next, with the options this run was given (never a value)."""
    return " ".join(part for part in ("yosai-secrets rotate", flag, *options.command_flags) if part)


def single_role(state: RotationState) -> bool:
    """Whether the rotation changes the only password of the role the app logs in as."""
    return state.db is not None and state.db.mode is DbMode.SINGLE


def _needs_operator(state: RotationState) -> bool:
    return bool(state.unmanaged) and not state.operator_done


def _hold_reason(state: RotationState, delivery: Delivery) -> str:
    """Why the rotation must stop before the app could depend on the new values ("": go on)."""
    if _needs_operator(state):
        names = ", ".join(state.unmanaged)
        why = (
            "no database admin connection is configured (ROTATION_DATABASE_URL or "
            "--database-url-file), so this tool cannot change the role's password"
            if state.unmanaged == [DB_PASSWORD_KEY]
            else "this tool cannot change them where they are checked"
        )
        return (
            f"{names}: {why}, and the app must not get a password the database does not have. "
            "Change it to the manifest's new value yourself, then run the command below at once "
            "(it promotes, applies and restarts)"
        )
    # An incident changes the leaked password even so: the new values are durable (journal,
    # manifest, store) before it changes, and the report says how they reach the app.
    if single_role(state) and not state.db_touched and not state.incident:
        possible, why = delivery.possible()
        if not possible:
            role = state.db.role if state.db is not None else "the database role"
            return (
                f"the role {role} has a single password: changing it now would refuse "
                f"every new login of the running app, which cannot get the new one ({why}). "
                "The password is unchanged; the manifest and the store are staged"
            )
    return ""


def _skipped(
    steps: Sequence[Step], state: RotationState, delivery: Delivery, store: str
) -> dict[Step, str]:
    """The steps that have nothing to do in this rotation, and why (one source of truth)."""
    reasons: dict[Step, Callable[[], str]] = {
        Step.STORE_STAGE: lambda: "SECRET_BACKEND=env: no store" if store == "env" else "",
        Step.STORE_PROMOTE: lambda: "SECRET_BACKEND=env: no store" if store == "env" else "",
        Step.FINISH_STORE: lambda: "SECRET_BACKEND=env: no store" if store == "env" else "",
        Step.DB_SET: lambda: "" if state.db else "no database role is changed",
        Step.DB_TEST: lambda: "" if state.db else "no database role is changed",
        Step.DB_CUT: lambda: (
            ("" if state.db else "no database role is changed")
            if state.incident
            else "only in an incident (yosai-secrets incident)"
        ),
        Step.APPLY_SECRET: lambda: (
            # An incident goes on without a cluster (only a routine rotation holds there).
            (delivery.possible()[1] if state.incident else "")
            if single_role(state)
            else "only for a single role (the restart delivers)"
        ),
        Step.FINISH_DB: lambda: "" if _old_role(state) else "no previous role to close",
        Step.ABORT_DB: lambda: "" if state.db and state.db_touched else "the role is unchanged",
        Step.ABORT_STORE: lambda: "SECRET_BACKEND=env: no store" if store == "env" else "",
        Step.APPLY: lambda: delivery.possible()[1],
        Step.FINISH_APPLY: lambda: delivery.possible()[1] or _delivered_already(state),
        Step.FINISH_INVALIDATE: lambda: _delivered_already(state),
        Step.ABORT_APPLY: lambda: (
            delivery.possible()[1] if state.applied else "the cluster never got the new values"
        ),
        Step.FINISH_MANIFEST: lambda: "" if "SECRET_KEY" in state.keys else "no SECRET_KEY",
    }
    out: dict[Step, str] = {}
    for step in steps:
        why = reasons[step]() if step in reasons else ""
        if why:
            out[step] = why
    return out


def _delivered_already(state: RotationState) -> str:
    """An incident's finish changes no current value: the rotation's own steps delivered them."""
    return "the incident's rotation delivered the same values in this run" if state.incident else ""


def _old_role(state: RotationState) -> bool:
    db = state.db
    return db is not None and db.mode is DbMode.ALTERNATING and db.active != db.role


def _remaining(state: RotationState, sequence: Sequence[Step]) -> list[Step]:
    return [s for s in sequence if s not in state.steps]


def plan_rotate(
    state: RotationState, *, fresh: bool, delivery: Delivery, store: str, options: RotationOptions
) -> Schedule:
    """``rotate``: start (``fresh``) or resume; hold where the app could be locked out."""
    phase = state.phase
    if phase is RotationPhase.ROTATED:
        return Schedule(
            refusal=(
                f"a rotation of {', '.join(state.keys)} is open since {state.started_at}: run "
                f"`{command(options, '--finish')}` once the cluster runs the new values (or "
                "--abort to roll back) before rotating again"
            )
        )
    if phase in (RotationPhase.FINISH, RotationPhase.ABORT):
        return _half_way(phase, options)
    restart = command(options, "--restart")
    if phase is RotationPhase.AWAITING_OPERATOR:
        reason = _hold_reason(state, delivery) or "it waits for you"
        return Schedule(outcome=Outcome.AWAITING_OPERATOR, held_reason=reason, next_command=restart)
    steps = list(ROTATE_STEPS) if fresh else _remaining(state, ROTATE_STEPS)
    reason = _hold_reason(state, delivery)
    if reason:
        stop = ROTATE_STEPS.index(HOLD_POINT)
        steps = [s for s in steps if ROTATE_STEPS.index(s) < stop]
        return Schedule(
            steps=steps,
            outcome=Outcome.AWAITING_OPERATOR,
            skipped=_skipped(steps, state, delivery, store),
            held_reason=reason,
            next_command=restart,
        )
    return _forward(steps, state, delivery, store, options)


def _forward(
    steps: list[Step],
    state: RotationState,
    delivery: Delivery,
    store: str,
    options: RotationOptions,
) -> Schedule:
    skipped = _skipped(steps, state, delivery, store)
    delivered, why = delivery.possible()
    if single_role(state) and not delivered and not state.incident:
        # Only after a run that changed the password and was interrupted before the apply.
        return Schedule(
            steps=steps,
            outcome=Outcome.AWAITING_OPERATOR,
            skipped=skipped,
            held_reason=(
                "an interrupted run changed the role's password, but the cluster cannot get the "
                f"new one ({why}): new logins of the running app fail until it does. Run the "
                "command below where kubectl reaches the cluster now, or --abort"
            ),
            next_command=command(options, "--restart"),
        )
    return Schedule(
        steps=steps,
        outcome=Outcome.ROTATED,
        skipped=skipped,
        next_command=command(options, "--finish" if delivered else "--restart"),
    )


def plan_restart(
    state: RotationState | None, *, delivery: Delivery, store: str, options: RotationOptions
) -> Schedule:
    """``--restart``: continue a held rotation (password, apply, restart), or apply again."""
    possible, why = delivery.possible()
    where = f"run `{command(options, '--restart')}` where kubectl reaches the cluster"
    if state is None or state.phase is RotationPhase.ROTATED:
        if not possible:
            return Schedule(refusal=f"cannot apply the manifest: {why}; {where}")
        finish = command(options, "--finish") if state is not None else ""
        return Schedule(steps=[Step.APPLY], outcome=Outcome.RESTARTED, next_command=finish)
    if state.phase in (RotationPhase.FINISH, RotationPhase.ABORT):
        return _half_way(state.phase, options)
    if single_role(state) and not state.db_touched and not possible:
        return Schedule(
            outcome=Outcome.AWAITING_OPERATOR,
            held_reason=_hold_reason(state, delivery),
            next_command=command(options, "--restart"),
        )
    steps = _remaining(state, ROTATE_STEPS)
    if Step.APPLY not in steps and state.applied_at is None:
        steps.append(Step.APPLY)  # held after a password change: deliver now
    return _forward(steps, state, delivery, store, options)


def plan_finish(
    state: RotationState | None,
    *,
    delivery: Delivery,
    store: str,
    options: RotationOptions,
    now: datetime,
) -> Schedule:
    """``--finish``: only once the cluster holds the new values and old sessions have expired.

    Checked: the live Secret's values digest equals the manifest's, the rollout started after the
    apply completed, and (when ``SECRET_KEY`` rotated) ``PERMANENT_SESSION_LIFETIME`` has passed
    since the apply. ``now`` skips the wait; ``skip_cluster_check`` (with ``now`` only) skips the
    cluster, for values delivered by other means.
    """
    if state is None:
        return Schedule(outcome=Outcome.FINISHED)  # the engine drops leftover fallbacks
    if state.phase in (RotationPhase.ROTATE, RotationPhase.AWAITING_OPERATOR):
        flag = "--restart" if state.phase is RotationPhase.AWAITING_OPERATOR else ""
        return Schedule(
            refusal=(
                f"the rotation is not complete (phase {state.phase}); run "
                f"`{command(options, flag)}` first, or --abort"
            )
        )
    if state.phase is RotationPhase.ABORT:
        return _half_way(state.phase, options)
    if state.phase is RotationPhase.ROTATED:
        missing, fix = _finish_gates(state, delivery, options, now)
        if missing:
            listed = "; ".join(f"({i}) {m}" for i, m in enumerate(missing, 1))
            return Schedule(refusal=f"not finishing yet: {listed}. Run {fix}")
    steps = _remaining(state, FINISH_STEPS)
    skipped = _skipped(steps, state, delivery, store)
    undelivered = Step.FINISH_APPLY in skipped and not delivery.possible()[0]
    later = command(options, "--restart") if undelivered else ""
    return Schedule(steps=steps, outcome=Outcome.FINISHED, skipped=skipped, next_command=later)


def _finish_gates(
    state: RotationState, delivery: Delivery, options: RotationOptions, now: datetime
) -> tuple[list[str], str]:
    """What is missing before ``--finish``, and the single command that addresses the first."""
    missing: list[str] = []
    fix = ""
    if options.skip_cluster_check:
        if not options.now:
            missing.append("--skip-cluster-check is only for incidents: give --now as well")
            fix = f"`{command(options, '--finish --now --skip-cluster-check')}`"
    else:
        possible, why = delivery.possible()
        if not possible:
            # An incident's old values are dead already: the cluster has nothing left to lose.
            if not state.incident:
                missing.append(
                    f"cannot check that the cluster has the new values ({why}); if you "
                    "delivered them by other means, --now --skip-cluster-check finishes without "
                    "the check"
                )
                fix = f"`{command(options, '--finish')}` where kubectl reaches the cluster"
        else:
            missing.extend(delivery.missing(state))
            fix = f"`{command(options, '--restart')}`, then --finish" if missing else ""
    # An incident refuses the sessions signed with the leaked key: nothing to wait for.
    if not options.now and not state.incident and "SECRET_KEY" in state.keys:
        wait, when = _session_wait(state, options, now)
        if wait:
            missing.append(wait)
            fix = fix or f"`{command(options, '--finish')}`{when}"
    return missing, fix


def finish_after(state: RotationState, options: RotationOptions) -> datetime | None:
    """When sessions signed with the previous SECRET_KEY have expired (None: never applied)."""
    if state.applied_at is None:
        return None
    applied = datetime.fromisoformat(state.applied_at.replace("Z", "+00:00"))
    return applied + timedelta(seconds=session_lifetime_seconds(options.environ))


def _session_wait(state: RotationState, options: RotationOptions, now: datetime) -> tuple[str, str]:
    """What is missing about old sessions ("" if nothing), and when to run --finish."""
    expires = finish_after(state, options)
    if expires is None:
        return (
            "no apply by this tool is recorded, so when sessions signed with the old SECRET_KEY "
            "expire is unknown (--now finishes anyway, e.g. in an incident)",
            " with --now",
        )
    if now >= expires:
        return "", ""
    return (
        f"sessions signed with the old SECRET_KEY may be valid until {_stamp(expires)} "
        "(PERMANENT_SESSION_LIFETIME after the apply; --now finishes anyway, in an incident)",
        f" after {_stamp(expires)}",
    )


def _stamp(when: datetime) -> str:
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def plan_abort(
    state: RotationState | None, *, delivery: Delivery, store: str, options: RotationOptions
) -> Schedule:
    """``--abort``: every old value back, from any point before ``--finish``.

    With one role whose new password the cluster already runs, the old password comes back only
    where the old values can be applied in the same run (else the app would be locked out).
    """
    if state is None:
        return Schedule(outcome=Outcome.NOTHING_TO_DO)
    if state.phase is RotationPhase.FINISH:
        return _half_way(state.phase, options)
    steps = _remaining(state, ABORT_STEPS)
    possible, why = delivery.possible()
    if single_role(state) and state.applied and Step.ABORT_DB in steps and not possible:
        return Schedule(
            refusal=(
                "the cluster runs the role's new password: restoring the old one without applying "
                f"the old values would lock the app out ({why}); run "
                f"`{command(options, '--abort')}` where kubectl reaches the cluster"
            )
        )
    skipped = _skipped(steps, state, delivery, store)
    later = command(options, "--restart") if state.applied and not possible else ""
    return Schedule(steps=steps, outcome=Outcome.ABORTED, skipped=skipped, next_command=later)


def _half_way(phase: RotationPhase, options: RotationOptions) -> Schedule:
    return Schedule(
        refusal=(
            f"a rotation is half-way through --{phase}: run "
            f"`{command(options, '--' + str(phase))}` again to complete it"
        )
    )
