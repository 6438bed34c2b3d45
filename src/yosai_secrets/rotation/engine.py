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
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Final

from ..errors import ConfigurationError, RotationError
from ..manager import invalidate_secret
from .generate import FALLBACKS_KEY, format_fallbacks, parse_fallbacks
from .journal import Journal, exclusive, journal_path
from .kubectl import later_commands
from .manifest import SecretManifest
from .plan import DB_PASSWORD_KEY, RotationOptions, build_plan, ensure_manifest
from .postgres import DATABASE_URL_VARIABLE, PostgresRoles
from .report import RotationReport, dry_run_report, hold_warnings
from .stores import Store, open_store

__all__ = ["ABORT_STEPS", "FINISH_STEPS", "ROTATE_STEPS", "RotationEngine"]

ROTATE_STEPS: Final = (
    "prepare",
    "store-stage",
    "db-set",
    "db-test",
    "manifest",
    "store-promote",
    "invalidate",
    "apply",
)
FINISH_STEPS: Final = (
    "finish-manifest",
    "finish-store",
    "finish-db",
    "finish-invalidate",
    "finish-apply",
)
ABORT_STEPS: Final = (
    "abort-manifest",
    "abort-store",
    "abort-db",
    "abort-invalidate",
    "abort-apply",
)


class RotationEngine:
    """Runs, resumes, finishes and aborts the rotation of one manifest."""

    def __init__(self, options: RotationOptions) -> None:
        self.options = options
        self.journal_path = journal_path(options.manifest)
        self._store: Store | None = options.store

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
            data = build_plan(self.options, manifest, self.store())
            journal = Journal.create(self.journal_path, {"id": str(uuid.uuid4()), **data})
            self._done(journal, "prepare", report)
        elif journal.phase == "awaiting-operator":
            report.resumed = True
            self._describe(journal, report)
            return self._hold(journal, report)
        elif journal.phase == "rotated":
            raise RotationError(
                f"a rotation of {', '.join(journal.data['keys'])} is open since "
                f"{journal.data['started_at']}: run `yosai-secrets rotate --finish` once the pods "
                "run the new values (or --abort to roll back) before rotating again"
            )
        elif journal.phase in ("finish", "abort"):
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
        if journal is not None and journal.phase in ("awaiting-operator", "rotate"):
            journal.data["hold"] = False
            journal.data["operator_done"] = True
            journal.set_phase("rotate")
            report.resumed = True
            self._describe(journal, report)
            return self._forward(journal, report)
        if journal is not None and journal.phase in ("finish", "abort"):
            raise RotationError(
                f"run `yosai-secrets rotate --{journal.phase}` to complete it first"
            )
        manifest = SecretManifest(self.options.manifest)
        self._kubectl(report, manifest.namespace(), self.options.deployment_name())
        if journal is not None:
            self._describe(journal, report)
            journal.data["applied"] = journal.data["applied"] or report.applied
            journal.save()
        report.outcome = "restarted" if report.restarted else "not-applied"
        return report

    def _finish(self) -> RotationReport:
        journal = Journal.load(self.journal_path)
        report = RotationReport("finish", manifest=str(self.options.manifest))
        if journal is None:
            return self._finish_without_journal(report)
        if journal.phase in ("rotate", "awaiting-operator"):
            command = "yosai-secrets rotate" + (
                " --restart" if journal.phase == "awaiting-operator" else ""
            )
            raise RotationError(
                f"the rotation is not complete (phase {journal.phase}); run `{command}` first, "
                "or --abort"
            )
        if journal.phase == "abort":
            raise RotationError("an abort is half-way: run `yosai-secrets rotate --abort` again")
        report.resumed = journal.phase == "finish"
        journal.set_phase("finish")
        self._describe(journal, report)
        self._run(journal, FINISH_STEPS, report)
        journal.delete()
        report.outcome = "finished"
        return report

    def _abort(self) -> RotationReport:
        journal = Journal.load(self.journal_path)
        report = RotationReport("abort", manifest=str(self.options.manifest))
        if journal is None:
            report.outcome = "nothing-to-do"
            return report
        if journal.phase == "finish":
            raise RotationError("a finish is half-way: run `yosai-secrets rotate --finish` again")
        report.resumed = journal.phase == "abort"
        journal.set_phase("abort")
        self._describe(journal, report)
        self._run(journal, ABORT_STEPS, report)
        journal.delete()
        report.outcome = "aborted"
        return report

    # -- the step loop ---------------------------------------------------------------------------

    def _forward(self, journal: Journal, report: RotationReport) -> RotationReport:
        for step in ROTATE_STEPS:
            if journal.is_done(step):
                continue
            if step == "store-promote" and journal.data.get("hold"):
                return self._hold(journal, report)
            self._step(step)(journal, report)
            self._done(journal, step, report)
        journal.set_phase("rotated")
        report.outcome = "rotated"
        return report

    def _run(self, journal: Journal, steps: tuple[str, ...], report: RotationReport) -> None:
        for step in steps:
            if not journal.is_done(step):
                self._step(step)(journal, report)
                self._done(journal, step, report)

    def _step(self, name: str) -> Callable[[Journal, RotationReport], None]:
        method: Callable[[Journal, RotationReport], None] = getattr(
            self, "_" + name.replace("-", "_")
        )
        return method

    def _done(self, journal: Journal, step: str, report: RotationReport) -> None:
        journal.mark(step)
        skipped = step.startswith("db-") and not journal.data["db"]["managed"]
        report.steps.append(f"{step} (skipped: no database role to change)" if skipped else step)
        if self.options.after_step is not None:
            self.options.after_step(step)

    def _hold(self, journal: Journal, report: RotationReport) -> RotationReport:
        if journal.phase != "awaiting-operator":
            journal.set_phase("awaiting-operator")
        report.outcome = "awaiting-operator"
        report.not_applied_reason = (
            "waiting for you to change the password(s) named above where they are checked; "
            "the deployment was not restarted either"
        )
        report.commands_later = [
            "yosai-secrets rotate --restart    (applies, restarts, then the rotation is open)",
            *later_commands(
                self.options.manifest, journal.data["deployment"], journal.data.get("namespace")
            ),
        ]
        report.warnings.extend(hold_warnings(journal.data["unmanaged"]))
        return report

    # -- rotate steps ----------------------------------------------------------------------------

    def _store_stage(self, journal: Journal, report: RotationReport) -> None:
        store, state = self.store(), journal.data["store"]
        store.prepare(state, journal.data["old"])
        journal.save()  # the request tokens are durable before anything is put
        store.stage(state, journal.data["new"])

    def _db_set(self, journal: Journal, report: RotationReport) -> None:
        db = journal.data["db"]
        if db["managed"]:
            self._roles(db).set_password(db["role"], journal.data["new"][DB_PASSWORD_KEY])

    def _db_test(self, journal: Journal, report: RotationReport) -> None:
        db = journal.data["db"]
        if not db["managed"]:
            return
        try:
            self._roles(db).test_login(db["role"], journal.data["new"][DB_PASSWORD_KEY])
        except RotationError as exc:
            raise RotationError(
                f"{exc}. The new password does not work, so nothing was promoted; run "
                "`yosai-secrets rotate --abort` to restore the old one, or fix and run rotate again"
            ) from None

    def _manifest(self, journal: Journal, report: RotationReport) -> None:
        manifest = SecretManifest(self.options.manifest)
        for key, value in journal.data["new"].items():
            manifest.set(key, value, near="SECRET_KEY")
        for key in journal.data["keys"]:
            manifest.set_annotation(key, journal.data["started_at"])
        manifest.save()

    def _store_promote(self, journal: Journal, report: RotationReport) -> None:
        self.store().promote(journal.data["store"], journal.data["new"], journal.data["started_at"])

    def _invalidate(self, journal: Journal, report: RotationReport) -> None:
        for key in journal.data["new"]:
            invalidate_secret(key)

    def _apply(self, journal: Journal, report: RotationReport) -> None:
        unmanaged = journal.data["unmanaged"]
        # A password the database does not have yet must not reach the pods: apply the Secret
        # (environment variables see it only after a restart) and leave the restart to the
        # operator, who changes the role's password first.
        restart = not unmanaged or bool(journal.data.get("operator_done"))
        self._kubectl(
            report, journal.data.get("namespace"), journal.data["deployment"], restart=restart
        )
        journal.data["applied"] = journal.data["applied"] or report.applied
        if unmanaged and not restart:
            report.warnings.extend(hold_warnings(unmanaged))
            report.commands_later = [
                "yosai-secrets rotate --restart    (once the role's password matches)",
                *report.commands_later,
            ]

    def _kubectl(
        self,
        report: RotationReport,
        namespace: str | None,
        deployment: str,
        *,
        restart: bool = True,
    ) -> None:
        path = self.options.manifest
        report.commands_later = later_commands(path, deployment, namespace)
        if not self.options.apply:
            report.not_applied_reason = "--no-apply was given"
            return
        reachable, why = self.options.kubectl.reachable()
        if not reachable:
            report.not_applied_reason = why
            return
        self.options.kubectl.apply_and_restart(path, deployment, namespace, restart=restart)
        report.applied = True
        report.restarted = restart
        report.commands_later = [] if restart else later_commands(path, deployment, namespace)[-2:]

    # -- finish steps ----------------------------------------------------------------------------

    def _finish_manifest(self, journal: Journal, report: RotationReport) -> None:
        if "SECRET_KEY" not in journal.data["keys"]:
            return
        manifest = SecretManifest(self.options.manifest)
        old_key = journal.data["old"]["SECRET_KEY"]
        kept = [k for k in parse_fallbacks(manifest.get(FALLBACKS_KEY)) if k != old_key]
        journal.data["finish_fallbacks"] = format_fallbacks(kept)
        manifest.set(FALLBACKS_KEY, journal.data["finish_fallbacks"], near="SECRET_KEY")
        manifest.save()

    def _finish_store(self, journal: Journal, report: RotationReport) -> None:
        dropped = journal.data.get("finish_fallbacks")
        self.store().finish(journal.data["store"], {FALLBACKS_KEY: dropped} if dropped else {})

    def _finish_db(self, journal: Journal, report: RotationReport) -> None:
        db = journal.data["db"]
        if db["managed"] and db["mode"] == "alternating" and db["active"] != db["role"]:
            # The previous role stays, but no password logs in as it any more.
            self._roles(db).set_password(db["active"], None)

    def _finish_invalidate(self, journal: Journal, report: RotationReport) -> None:
        self._invalidate(journal, report)

    def _finish_apply(self, journal: Journal, report: RotationReport) -> None:
        self._apply(journal, report)

    def _finish_without_journal(self, report: RotationReport) -> RotationReport:
        manifest = SecretManifest(self.options.manifest)
        if manifest.has(FALLBACKS_KEY) and parse_fallbacks(manifest.get(FALLBACKS_KEY)):
            manifest.set(FALLBACKS_KEY, format_fallbacks([]))
            manifest.save()
            report.steps.append("finish-manifest")
            invalidate_secret(FALLBACKS_KEY)
            self._kubectl(report, manifest.namespace(), self.options.deployment_name())
            report.outcome = "finished"
        else:
            report.outcome = "nothing-to-do"
        return report

    # -- abort steps -----------------------------------------------------------------------------

    def _abort_manifest(self, journal: Journal, report: RotationReport) -> None:
        manifest = SecretManifest(self.options.manifest)
        absent = set(journal.data.get("absent", []))
        for key, value in journal.data["old"].items():
            if key in absent:
                manifest.remove(key)
            else:
                manifest.set(key, value, near="SECRET_KEY")
        for key, stamp in journal.data["annotations"].items():
            manifest.set_annotation(key, stamp)
        manifest.save()

    def _abort_store(self, journal: Journal, report: RotationReport) -> None:
        if journal.is_done("prepare") and journal.data["store"].get("backend") != "env":
            state = journal.data["store"]
            if state.get("entries") or "old_version" in state:
                self.store().abort(state, journal.data["old"], journal.data["new"])

    def _abort_db(self, journal: Journal, report: RotationReport) -> None:
        db = journal.data["db"]
        if not db["managed"] or not journal.is_done("store-stage"):
            return  # db-set never started: the role still has its old password
        roles = self._roles(db)
        if db.get("previous_verifier"):
            roles.set_verifier(db["role"], db["previous_verifier"])
        elif db["mode"] == "single":
            roles.set_password(db["role"], journal.data["old"][DB_PASSWORD_KEY])
        else:
            roles.set_password(db["role"], None)

    def _abort_invalidate(self, journal: Journal, report: RotationReport) -> None:
        self._invalidate(journal, report)

    def _abort_apply(self, journal: Journal, report: RotationReport) -> None:
        if journal.data.get("applied"):
            self._apply(journal, report)
        else:
            report.not_applied_reason = "the cluster never received the new values"

    # -- helpers ---------------------------------------------------------------------------------

    def store(self) -> Store:
        """The secret store (built from ``SECRET_BACKEND`` on first use)."""
        if self._store is None:
            self._store = open_store(self.options.environ)
        return self._store

    def _roles(self, db: dict[str, Any]) -> PostgresRoles:
        roles = self.options.roles()
        if roles is None:
            raise ConfigurationError(
                f"this rotation changes the database role {db['role']!r} at {db['target']}: give "
                f"the same admin connection (--database-url or {DATABASE_URL_VARIABLE}) to continue"
            )
        return roles

    @staticmethod
    def _describe(journal: Journal, report: RotationReport) -> None:
        data = journal.data
        report.keys = list(data["keys"])
        report.store = str(data["store"].get("backend", "env"))
        db = data["db"]
        report.database = (
            {"mode": db["mode"], "role": db["role"], "target": db["target"]}
            if db["managed"]
            else None
        )
        report.journal = str(journal.path)
