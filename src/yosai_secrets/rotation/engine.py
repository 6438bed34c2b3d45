"""The rotation protocol: idempotent steps, recorded in a journal, resumable at any point.

Rotate (each step is durable before the next starts)::

    prepare        generate the new values; write the journal (old + new values, 0600, fsynced)
    store-stage    record the store's current versions; AWS: put the new values as AWSPENDING
    manifest       write the new values into the manifest (old SECRET_KEY -> SECRET_KEY_FALLBACKS)
                   and the values' digest (``rotation.yosai.io/values-sha256``)
      -- a rotation that cannot reach the app without locking it out holds here (exit 3) --
    apply-secret   one role only: apply the Secret (pods see it when they restart)
    db-set         ALTER ROLE ... PASSWORD (the new value is durable: journal, pending version)
    db-test        open a new connection with the new password, before anything is promoted
    store-promote  Vault: a new KV v2 version; AWS: AWSCURRENT -> new, AWSPREVIOUS -> old
    invalidate     invalidate_secret() for every rotated key; tell ROTATION_NOTIFY_URLS / PIDFILE
    apply          kubectl server-side apply, rollout restart and status; the apply time recorded

Finish (only once the cluster holds the new values and old sessions expired: :mod:`.schedule`)
drops the previous SECRET_KEY from the fallbacks, destroys the old store versions, removes the old
database credential (alternating users) and applies again. Abort puts every old value back.
Re-running ``rotate``, ``--restart``, ``--finish`` or ``--abort`` continues where it stopped.

Each command is decided first (a :class:`~.schedule.Schedule`), then run; ``dry_run=True`` returns
the decision as a report and changes nothing.

An incident (:meth:`RotationEngine.incident`) rotates with no grace and finishes in the same run:
no fallback is kept, ``db-cut`` (after ``db-test``) takes the leaked password away and ends the
role's open sessions, and the finish purges every store version holding a leaked value. Every run
(not a dry run) records who ran it and why (``reason``) with
:func:`yosai_secrets.audit.events.emit_operation`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..errors import RotationError
from ..manager import invalidate_secret
from .delivery import Delivery
from .generate import FALLBACKS_KEY, format_fallbacks, parse_fallbacks
from .journal import Journal, exclusive, journal_path
from .manifest import SecretManifest
from .plan import DB_PASSWORD_KEY, RotationOptions, build_plan, ensure_manifest, example_for
from .report import Outcome, RotationReport, masked_changes
from .schedule import (
    Schedule,
    command,
    finish_after,
    plan_abort,
    plan_finish,
    plan_restart,
    plan_rotate,
)
from .state import ABORT_STEPS, FINISH_STEPS, ROTATE_STEPS, DbMode, RotationPhase, Step
from .steps import RotationSteps
from .stores import Store, open_store
from .trail import recorded, refuse_routine, rotating

__all__ = ["ABORT_STEPS", "FINISH_STEPS", "ROTATE_STEPS", "RotationEngine"]

_ALTERNATING_NOTE = (
    "Alternating users are recommended: with one role, every new login with the old password "
    "fails from the password change until every pod has restarted. With two roles, the idle one "
    "gets the new password and the active one keeps working until --finish: no login fails. Set "
    "it up once with `yosai-secrets rotate --setup-alternating`."
)


class RotationEngine:
    """Runs, resumes, finishes and aborts the rotation of one manifest."""

    def __init__(self, options: RotationOptions) -> None:
        self.options = options
        self.journal_path = journal_path(options.manifest)
        self._store: Store | None = options.store
        self.delivery = Delivery(options)
        self.steps = RotationSteps(options, self.store, self.delivery)

    def __repr__(self) -> str:
        return f"RotationEngine(manifest={str(self.options.manifest)!r})"

    # -- commands --------------------------------------------------------------------------------

    def rotate(self, *, dry_run: bool = False) -> RotationReport:
        """Start a rotation, or resume an interrupted one; hold where the app could be locked out.

        Raises:
            RotationError: a step failed (the journal keeps the state: re-run or ``--abort``), or
                a rotation is open and waits for ``--finish``.
        """
        if dry_run:
            return self._predict("rotate")
        return self._recorded("rotate", self._rotate)

    def restart(self, *, dry_run: bool = False) -> RotationReport:
        """Continue a held rotation (password, apply, restart), or apply and restart again.

        Raises:
            RotationError: the cluster cannot be reached (nothing is held), or a step failed.
        """
        if dry_run:
            return self._predict("restart")
        return self._recorded("restart", self._restart)

    def finish(self, *, dry_run: bool = False) -> RotationReport:
        """Drop the previous values: fallbacks, old store versions, the old database credential.

        Raises:
            RotationError: the cluster does not hold the new values yet, sessions signed with the
                old key may still be valid, or a step failed (re-run to resume).
        """
        if dry_run:
            return self._predict("finish")
        return self._recorded("finish", self._finish)

    def abort(self, *, dry_run: bool = False) -> RotationReport:
        """Roll back to the old values everywhere (resumable too).

        Raises:
            RotationError: a finish is under way, or a step failed (re-run to resume).
        """
        if dry_run:
            return self._predict("abort")
        return self._recorded("abort", self._abort)

    def incident(self) -> RotationReport:
        """Rotate now with no grace, and finish in the same run (``yosai-secrets incident``).

        No previous value is kept: ``SECRET_KEY_FALLBACKS`` is emptied (every session signed
        before is refused), the leaked database password stops logging in and every open session
        of its role is terminated (single role and alternating users), and the store's versions
        holding a leaked value are purged. The new values are durable (journal, manifest, store)
        before the old credential is taken away. ``options.grace`` is ignored: an incident never
        has any. An interrupted incident is resumed by running it again.

        Raises:
            RotationError: a routine rotation is open (finish or abort it first), or a step
                failed (the journal keeps the state: run the incident again to resume).
        """
        return self._recorded("incident", self._incident)

    def _recorded(self, action: str, run: Callable[[], RotationReport]) -> RotationReport:
        """Run ``action`` under the journal's lock, recorded in the audit log."""

        def locked() -> RotationReport:
            with exclusive(self.journal_path):
                return run()

        return recorded(action, self.options, locked)

    # -- the runs --------------------------------------------------------------------------------

    def _incident(self) -> RotationReport:
        journal = Journal.load(self.journal_path)
        report = self._report("incident")
        report.incident = True
        if journal is None:
            report.created_manifest = ensure_manifest(self.options.manifest)
            options = dataclasses.replace(self.options, grace=False)
            state = build_plan(options, SecretManifest(self.options.manifest), self.store())
            schedule = plan_rotate(
                state, fresh=True, delivery=self.delivery, store=self.store().name, options=options
            )
            _refuse(schedule)
            journal = Journal.create(self.journal_path, state)
        else:
            refuse_routine(journal.state, journal.phase, self.options)
            report.resumed = True
            schedule = self._plan("rotate", journal) if rotating(journal.phase) else Schedule()
        if rotating(journal.phase):
            self._execute(journal, schedule, report)
            if report.outcome is not Outcome.ROTATED:
                return report  # held: a password this tool cannot change (the report says which)
        schedule = self._plan("finish", journal)
        journal.set_phase(RotationPhase.FINISH)
        return self._execute(journal, schedule, report)

    def _rotate(self) -> RotationReport:
        journal = Journal.load(self.journal_path)
        report = self._report("rotate")
        if journal is not None:
            report.resumed = journal.phase is RotationPhase.ROTATE
            schedule = self._plan("rotate", journal)
            return self._execute(journal, schedule, report)
        report.created_manifest = ensure_manifest(self.options.manifest)
        state = build_plan(self.options, SecretManifest(self.options.manifest), self.store())
        schedule = plan_rotate(
            state, fresh=True, delivery=self.delivery, store=self.store().name, options=self.options
        )
        _refuse(schedule)
        journal = Journal.create(self.journal_path, state)  # the prepare step, in one write
        return self._execute(journal, schedule, report)

    def _restart(self) -> RotationReport:
        journal = Journal.load(self.journal_path)
        report = self._report("restart")
        schedule = self._plan("restart", journal)
        if journal is None:
            self._describe_cluster(report, schedule)
            report.target = self.delivery.apply(
                self.options.manifest,
                self.options.deployment_name(),
                SecretManifest(self.options.manifest).namespace(),
                restart=True,
            )
            report.applied = report.restarted = True
            report.steps = [Step.APPLY]
            report.outcome = schedule.outcome
            return report
        if journal.phase is RotationPhase.AWAITING_OPERATOR and schedule.steps:
            journal.state.operator_done = True
            journal.set_phase(RotationPhase.ROTATE)
            report.resumed = True
        return self._execute(journal, schedule, report)

    def _finish(self) -> RotationReport:
        journal = Journal.load(self.journal_path)
        report = self._report("finish")
        if journal is None:
            return self._finish_without_journal(report)
        report.resumed = journal.phase is RotationPhase.FINISH
        schedule = self._plan("finish", journal)
        journal.set_phase(RotationPhase.FINISH)
        return self._execute(journal, schedule, report)

    def _abort(self) -> RotationReport:
        journal = Journal.load(self.journal_path)
        report = self._report("abort")
        if journal is None:
            report.outcome = Outcome.NOTHING_TO_DO
            return report
        report.resumed = journal.phase is RotationPhase.ABORT
        schedule = self._plan("abort", journal)
        journal.set_phase(RotationPhase.ABORT)
        if journal.state.operator_done:
            report.warnings.extend(
                f"{key}: you changed it by hand for this rotation; change it back to the previous "
                "value (the manifest holds it again)"
                for key in journal.state.unmanaged
            )
        return self._execute(journal, schedule, report)

    def _finish_without_journal(self, report: RotationReport) -> RotationReport:
        manifest = SecretManifest(self.options.manifest)
        if not _has_fallbacks(manifest):
            report.outcome = Outcome.NOTHING_TO_DO
            return report
        manifest.set(FALLBACKS_KEY, format_fallbacks([]))
        manifest.save()
        report.steps.append(Step.FINISH_MANIFEST)
        invalidate_secret(FALLBACKS_KEY)
        possible, why = self.delivery.possible()
        if possible:
            report.target = self.delivery.apply(
                self.options.manifest,
                self.options.deployment_name(),
                manifest.namespace(),
                restart=True,
            )
            report.applied = report.restarted = True
            report.steps.append(Step.FINISH_APPLY)
        else:
            report.not_applied_reason = why
            report.next_command = command(self.options, "--restart")
        report.outcome = Outcome.FINISHED
        return report

    # -- deciding and running --------------------------------------------------------------------

    def _plan(self, action: str, journal: Journal | None) -> Schedule:
        """The schedule of ``action`` for the journal's state; a refusal is raised."""
        schedule = self._decide(action, journal)
        _refuse(schedule)
        return schedule

    def _decide(self, action: str, journal: Journal | None) -> Schedule:
        state = journal.state if journal is not None else None
        store = self.store().name if state is None else str(state.store.get("backend", "env"))
        if action == "restart":
            return plan_restart(state, delivery=self.delivery, store=store, options=self.options)
        if action == "finish":
            return plan_finish(
                state,
                delivery=self.delivery,
                store=store,
                options=self.options,
                now=self.options.clock(),
            )
        if action == "abort":
            return plan_abort(state, delivery=self.delivery, store=store, options=self.options)
        if state is None:
            raise RotationError("no rotation journal to resume")  # _rotate plans fresh ones
        return plan_rotate(
            state, fresh=False, delivery=self.delivery, store=store, options=self.options
        )

    def _execute(
        self, journal: Journal, schedule: Schedule, report: RotationReport
    ) -> RotationReport:
        self._describe(journal, report)
        self._describe_cluster(report, schedule)
        for step in schedule.steps:
            if step in schedule.skipped:
                report.skipped.append(f"{step}: {schedule.skipped[step]}")
            else:
                with self.options.progress(f"step {step}"):
                    self.steps.run(step, journal, report)
                report.steps.append(step)
            journal.mark(step)
            if self.options.after_step is not None:
                self.options.after_step(step)
        self._conclude(journal, schedule, report)
        return report

    def _conclude(self, journal: Journal, schedule: Schedule, report: RotationReport) -> None:
        """Enter the phase the schedule ends in; fill the report's summary fields."""
        report.outcome = schedule.outcome
        report.held_reason = schedule.held_reason
        report.next_command = schedule.next_command
        if schedule.outcome is Outcome.AWAITING_OPERATOR:
            journal.set_phase(RotationPhase.AWAITING_OPERATOR)
        elif schedule.outcome in (Outcome.ROTATED, Outcome.RESTARTED):
            journal.set_phase(RotationPhase.ROTATED)
            self._finish_note(journal, report)
        else:
            journal.delete()

    def _finish_note(self, journal: Journal, report: RotationReport) -> None:
        if "SECRET_KEY" not in journal.state.keys or report.next_command != command(
            self.options, "--finish"
        ):
            return
        expires = finish_after(journal.state, self.options)
        if expires is not None:
            when = expires.replace(microsecond=0).isoformat().replace("+00:00", "Z")
            report.next_note = (
                f"after {when}, once sessions signed with the previous SECRET_KEY have expired"
            )

    def _predict(self, action: str) -> RotationReport:
        """What ``action`` would do now, as a report; nothing is written."""
        journal = Journal.load(self.journal_path)
        report = self._report(action)
        report.dry_run = True
        if journal is not None:
            self._describe(journal, report)
            schedule = self._decide(action, journal)
        elif action == "rotate":
            schedule = self._predict_fresh(report)
        elif action == "finish":
            manifest = SecretManifest(self.options.manifest)
            fallbacks = _has_fallbacks(manifest)
            schedule = Schedule(outcome=Outcome.FINISHED if fallbacks else Outcome.NOTHING_TO_DO)
        else:
            schedule = self._decide(action, None)
        if schedule.refusal:
            report.outcome = Outcome.REFUSED
            report.refusal = schedule.refusal
            return report
        report.outcome = schedule.outcome
        report.steps = [str(s) for s in schedule.effective()]
        report.skipped = [f"{s}: {why}" for s, why in schedule.skipped.items()]
        report.held_reason = schedule.held_reason
        report.next_command = schedule.next_command
        self._describe_cluster(report, schedule)
        return report

    def _predict_fresh(self, report: RotationReport) -> Schedule:
        path = self.options.manifest
        source = path if path.exists() else example_for(path)
        if not path.exists():
            report.notes.append(f"{path} does not exist; it would be created from {source}")
            report.created_manifest = True
        state = build_plan(self.options, SecretManifest(source), self.store())
        report.keys = list(state.keys)
        report.changes = masked_changes(list(state.keys))
        report.database = state.db.describe() if state.db is not None else None
        self._notes(
            state.db is not None and state.db.mode is DbMode.SINGLE, state.unmanaged, report
        )
        return plan_rotate(
            state, fresh=True, delivery=self.delivery, store=self.store().name, options=self.options
        )

    # -- helpers ---------------------------------------------------------------------------------

    def store(self) -> Store:
        """The secret store (built from ``SECRET_BACKEND`` on first use)."""
        if self._store is None:
            self._store = open_store(self.options.environ)
        return self._store

    def _report(self, action: str) -> RotationReport:
        report = RotationReport(action, manifest=str(self.options.manifest))
        report.store = self.store().name if self._store is not None else report.store
        return report

    def _describe(self, journal: Journal, report: RotationReport) -> None:
        state = journal.state
        report.keys = list(state.keys)
        report.store = str(state.store.get("backend", "env"))
        report.database = state.db.describe() if state.db is not None else None
        report.journal = str(journal.path)
        if report.action in ("rotate", "restart"):
            single = state.db is not None and state.db.mode is DbMode.SINGLE
            self._notes(single, state.unmanaged, report)

    @staticmethod
    def _notes(single: bool, unmanaged: list[str], report: RotationReport) -> None:
        if (single or DB_PASSWORD_KEY in unmanaged) and _ALTERNATING_NOTE not in report.notes:
            report.notes.append(_ALTERNATING_NOTE)

    def _describe_cluster(self, report: RotationReport, schedule: Schedule) -> None:
        """Why the manifest is not applied this run, when the schedule says so."""
        for step in (Step.APPLY, Step.FINISH_APPLY, Step.ABORT_APPLY):
            if step in schedule.skipped:
                report.not_applied_reason = schedule.skipped[step]


def _refuse(schedule: Schedule) -> None:
    if schedule.refusal:
        raise RotationError(schedule.refusal)


def _has_fallbacks(manifest: SecretManifest) -> bool:
    return manifest.has(FALLBACKS_KEY) and bool(parse_fallbacks(manifest.get(FALLBACKS_KEY)))
