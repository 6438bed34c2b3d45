"""The rotation protocol: idempotent steps, recorded in a journal, resumable at any point.

Rotate (each step is durable before the next starts)::

    prepare        generate the new values; write the journal (old + new values, 0600, fsynced)
    store-stage    record the store's current versions; AWS: put the new values as AWSPENDING
    db-set         ALTER ROLE ... PASSWORD (the new value is durable: journal, pending version)
    db-test        open a new connection with the new password, before anything is promoted
    manifest       write the new values into the manifest (old SECRET_KEY -> SECRET_KEY_FALLBACKS)
    store-promote  Vault: a new KV v2 version; AWS: AWSCURRENT -> new, AWSPREVIOUS -> old
    invalidate     invalidate_secret() for every rotated key
    apply          kubectl server-side dry run, server-side apply, rollout restart and status

Finish drops the previous SECRET_KEY from the fallbacks, destroys the old store versions, removes
the old database credential (alternating users) and applies again. Abort puts every old value back.
Re-running ``rotate``, ``--finish`` or ``--abort`` after a crash continues where it stopped.

This module runs the commands and the step loop; the steps themselves are in :mod:`.steps`.
"""

from __future__ import annotations

from ..errors import RotationError
from ..manager import invalidate_secret
from .generate import FALLBACKS_KEY, format_fallbacks, parse_fallbacks
from .journal import Journal, exclusive, journal_path
from .kubectl import later_commands
from .manifest import SecretManifest
from .plan import RotationOptions, build_plan, ensure_manifest
from .report import Outcome, RotationReport, dry_run_report, hold_warnings
from .state import ABORT_STEPS, FINISH_STEPS, ROTATE_STEPS, RotationPhase, Step
from .steps import RotationSteps
from .stores import Store, open_store

__all__ = ["ABORT_STEPS", "FINISH_STEPS", "ROTATE_STEPS", "RotationEngine"]


class RotationEngine:
    """Runs, resumes, finishes and aborts the rotation of one manifest."""

    def __init__(self, options: RotationOptions) -> None:
        self.options = options
        self.journal_path = journal_path(options.manifest)
        self._store: Store | None = options.store
        self.steps = RotationSteps(options, self.store)

    def __repr__(self) -> str:
        return f"RotationEngine(manifest={str(self.options.manifest)!r})"

    # -- commands --------------------------------------------------------------------------------

    def rotate(self, *, dry_run: bool = False) -> RotationReport:
        """Start a rotation, or resume an interrupted one.

        Raises:
            RotationError: a step failed (the journal keeps the state: re-run or ``--abort``), or
                a rotation is open and waits for ``--finish``.
        """
        if dry_run:
            return dry_run_report(self.options, Journal.load(self.journal_path), self.store())
        with exclusive(self.journal_path):
            return self._rotate()

    def restart(self) -> RotationReport:
        """Continue a rotation held for the operator (apply and restart), or just apply again."""
        with exclusive(self.journal_path):
            return self._restart()

    def finish(self) -> RotationReport:
        """Drop the previous values: fallbacks, old store versions, the old database credential.

        Raises:
            RotationError: the rotation is not complete yet, or a step failed (re-run to resume).
        """
        with exclusive(self.journal_path):
            return self._finish()

    def abort(self) -> RotationReport:
        """Roll back to the old values everywhere (resumable too).

        Raises:
            RotationError: a finish is under way, or a step failed (re-run to resume).
        """
        with exclusive(self.journal_path):
            return self._abort()

    def _rotate(self) -> RotationReport:
        journal = Journal.load(self.journal_path)
        report = RotationReport("rotate", manifest=str(self.options.manifest))
        if journal is None:
            report.created_manifest = ensure_manifest(self.options.manifest)
            manifest = SecretManifest(self.options.manifest)
            journal = Journal.create(
                self.journal_path, build_plan(self.options, manifest, self.store())
            )
            self._announce(journal, Step.PREPARE, report)  # the journal's creation is this step
        elif journal.phase is RotationPhase.AWAITING_OPERATOR:
            report.resumed = True
            self._describe(journal, report)
            return self._hold(journal, report)
        elif journal.phase is RotationPhase.ROTATED:
            raise RotationError(
                f"a rotation of {', '.join(journal.state.keys)} is open since "
                f"{journal.state.started_at}: run `yosai-secrets rotate --finish` once the pods "
                "run the new values (or --abort to roll back) before rotating again"
            )
        elif journal.phase in (RotationPhase.FINISH, RotationPhase.ABORT):
            raise RotationError(
                f"a rotation is half-way through --{journal.phase}: run `yosai-secrets rotate "
                f"--{journal.phase}` again to complete it"
            )
        else:
            report.resumed = True
        self._describe(journal, report)
        return self._forward(journal, report)

    def _restart(self) -> RotationReport:
        journal = Journal.load(self.journal_path)
        report = RotationReport("restart", manifest=str(self.options.manifest))
        self.options.apply = True
        if journal is not None and journal.phase in (
            RotationPhase.AWAITING_OPERATOR,
            RotationPhase.ROTATE,
        ):
            journal.state.hold = False
            journal.state.operator_done = True
            journal.set_phase(RotationPhase.ROTATE)
            report.resumed = True
            self._describe(journal, report)
            return self._forward(journal, report)
        if journal is not None and journal.phase in (RotationPhase.FINISH, RotationPhase.ABORT):
            raise RotationError(
                f"run `yosai-secrets rotate --{journal.phase}` to complete it first"
            )
        manifest = SecretManifest(self.options.manifest)
        self.steps.kubectl(report, manifest.namespace(), self.options.deployment_name())
        if journal is not None:
            self._describe(journal, report)
            journal.state.applied = journal.state.applied or report.applied
            journal.save()
        report.outcome = Outcome.RESTARTED if report.restarted else Outcome.NOT_APPLIED
        return report

    def _finish(self) -> RotationReport:
        journal = Journal.load(self.journal_path)
        report = RotationReport("finish", manifest=str(self.options.manifest))
        if journal is None:
            return self._finish_without_journal(report)
        if journal.phase in (RotationPhase.ROTATE, RotationPhase.AWAITING_OPERATOR):
            command = "yosai-secrets rotate" + (
                " --restart" if journal.phase is RotationPhase.AWAITING_OPERATOR else ""
            )
            raise RotationError(
                f"the rotation is not complete (phase {journal.phase}); run `{command}` first, "
                "or --abort"
            )
        if journal.phase is RotationPhase.ABORT:
            raise RotationError("an abort is half-way: run `yosai-secrets rotate --abort` again")
        report.resumed = journal.phase is RotationPhase.FINISH
        journal.set_phase(RotationPhase.FINISH)
        self._describe(journal, report)
        self._run(journal, FINISH_STEPS, report)
        journal.delete()
        report.outcome = Outcome.FINISHED
        return report

    def _abort(self) -> RotationReport:
        journal = Journal.load(self.journal_path)
        report = RotationReport("abort", manifest=str(self.options.manifest))
        if journal is None:
            report.outcome = Outcome.NOTHING_TO_DO
            return report
        if journal.phase is RotationPhase.FINISH:
            raise RotationError("a finish is half-way: run `yosai-secrets rotate --finish` again")
        report.resumed = journal.phase is RotationPhase.ABORT
        journal.set_phase(RotationPhase.ABORT)
        self._describe(journal, report)
        self._run(journal, ABORT_STEPS, report)
        journal.delete()
        report.outcome = Outcome.ABORTED
        return report

    def _finish_without_journal(self, report: RotationReport) -> RotationReport:
        manifest = SecretManifest(self.options.manifest)
        if manifest.has(FALLBACKS_KEY) and parse_fallbacks(manifest.get(FALLBACKS_KEY)):
            manifest.set(FALLBACKS_KEY, format_fallbacks([]))
            manifest.save()
            report.steps.append(Step.FINISH_MANIFEST)
            invalidate_secret(FALLBACKS_KEY)
            self.steps.kubectl(report, manifest.namespace(), self.options.deployment_name())
            report.outcome = Outcome.FINISHED
        else:
            report.outcome = Outcome.NOTHING_TO_DO
        return report

    # -- the step loop ---------------------------------------------------------------------------

    def _forward(self, journal: Journal, report: RotationReport) -> RotationReport:
        for step in ROTATE_STEPS:
            if journal.is_done(step):
                continue
            if step is Step.STORE_PROMOTE and journal.state.hold:
                return self._hold(journal, report)
            self.steps.run(step, journal, report)
            self._done(journal, step, report)
        journal.set_phase(RotationPhase.ROTATED)
        report.outcome = Outcome.ROTATED
        return report

    def _run(self, journal: Journal, steps: tuple[Step, ...], report: RotationReport) -> None:
        for step in steps:
            if not journal.is_done(step):
                self.steps.run(step, journal, report)
                self._done(journal, step, report)

    def _done(self, journal: Journal, step: Step, report: RotationReport) -> None:
        journal.mark(step)
        self._announce(journal, step, report)

    def _announce(self, journal: Journal, step: Step, report: RotationReport) -> None:
        skipped = step in (Step.DB_SET, Step.DB_TEST) and journal.state.db is None
        report.steps.append(f"{step} (skipped: no database role to change)" if skipped else step)
        if self.options.after_step is not None:
            self.options.after_step(step)

    def _hold(self, journal: Journal, report: RotationReport) -> RotationReport:
        if journal.phase is not RotationPhase.AWAITING_OPERATOR:
            journal.set_phase(RotationPhase.AWAITING_OPERATOR)
        report.outcome = Outcome.AWAITING_OPERATOR
        report.not_applied_reason = (
            "waiting for you to change the password(s) named above where they are checked; "
            "the deployment was not restarted either"
        )
        report.commands_later = [
            "yosai-secrets rotate --restart    (applies, restarts, then the rotation is open)",
            *later_commands(
                self.options.manifest, journal.state.deployment, journal.state.namespace
            ),
        ]
        report.warnings.extend(hold_warnings(journal.state.unmanaged))
        return report

    # -- helpers ---------------------------------------------------------------------------------

    def store(self) -> Store:
        """The secret store (built from ``SECRET_BACKEND`` on first use)."""
        if self._store is None:
            self._store = open_store(self.options.environ)
        return self._store

    @staticmethod
    def _describe(journal: Journal, report: RotationReport) -> None:
        state = journal.state
        report.keys = list(state.keys)
        report.store = str(state.store.get("backend", "env"))
        report.database = state.db.describe() if state.db is not None else None
        report.journal = str(journal.path)
