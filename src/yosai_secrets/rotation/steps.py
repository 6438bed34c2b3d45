"""The rotation's steps: one handler per :class:`~.state.Step`, dispatched from one table.

Every handler is idempotent (a re-run after a crash does the right thing) and records what it
learns in the journal's state; the engine marks the step done once the handler returns. Whether a
step runs at all (or is only recorded, having nothing to do) is decided by :mod:`.schedule`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from ..errors import ConfigurationError, RotationError
from ..manager import invalidate_secret
from .delivery import Delivery
from .generate import FALLBACKS_KEY, format_fallbacks, is_placeholder, parse_fallbacks
from .journal import Journal
from .manifest import SecretManifest
from .notify import notify_all
from .plan import DB_PASSWORD_KEY, RotationOptions
from .postgres import DATABASE_URL_VARIABLE, PostgresRoles
from .report import RotationReport
from .state import DatabasePlan, DbMode, RotationState, Step
from .stores import Store

__all__ = ["RotationSteps", "StepHandler", "leaked_values"]

StepHandler = Callable[[Journal, RotationReport], None]


class RotationSteps:
    """The handlers of every step, bound to one rotation's options, store and cluster.

    Args:
        options: the rotation's options.
        store: returns the secret store (opened on first use).
        delivery: the cluster as this run sees it (default: from ``options``).
    """

    def __init__(
        self,
        options: RotationOptions,
        store: Callable[[], Store],
        delivery: Delivery | None = None,
    ) -> None:
        self.options = options
        self.store = store
        self.delivery = delivery or Delivery(options)
        self.handlers: Mapping[Step, StepHandler] = MappingProxyType(
            {
                Step.PREPARE: self.prepare,
                Step.STORE_STAGE: self.store_stage,
                Step.MANIFEST: self.manifest,
                Step.APPLY_SECRET: self.apply_secret,
                Step.DB_SET: self.db_set,
                Step.DB_TEST: self.db_test,
                Step.DB_CUT: self.db_cut,
                Step.STORE_PROMOTE: self.store_promote,
                Step.INVALIDATE: self.invalidate,
                Step.APPLY: self.apply,
                Step.FINISH_MANIFEST: self.finish_manifest,
                Step.FINISH_STORE: self.finish_store,
                Step.FINISH_DB: self.finish_db,
                Step.FINISH_INVALIDATE: self.invalidate,
                Step.FINISH_APPLY: self.apply,
                Step.ABORT_MANIFEST: self.abort_manifest,
                Step.ABORT_STORE: self.abort_store,
                Step.ABORT_DB: self.abort_db,
                Step.ABORT_INVALIDATE: self.invalidate,
                Step.ABORT_APPLY: self.apply,
            }
        )

    def __repr__(self) -> str:
        return f"RotationSteps(manifest={str(self.options.manifest)!r})"

    def run(self, step: Step, journal: Journal, report: RotationReport) -> None:
        """Run ``step``'s handler (the caller records it as done)."""
        self.handlers[step](journal, report)

    # -- rotate ----------------------------------------------------------------------------------

    def prepare(self, journal: Journal, report: RotationReport) -> None:
        """Nothing left to do: creating the journal (plan and values, in one write) is this step."""

    def store_stage(self, journal: Journal, report: RotationReport) -> None:
        """Record the store's current versions, then stage the new values (AWS: AWSPENDING)."""
        store, state = self.store(), journal.state
        store.prepare(state.store, state.old)
        journal.save()  # the request tokens are durable before anything is put
        store.stage(state.store, state.new)

    def manifest(self, journal: Journal, report: RotationReport) -> None:
        """Write the new values, the rotation time and the values' digest into the manifest."""
        manifest = SecretManifest(self.options.manifest)
        for key, value in journal.state.new.items():
            manifest.set(key, value, near="SECRET_KEY")
        for key in journal.state.keys:
            manifest.set_annotation(key, journal.state.started_at)
        digest = manifest.set_values_digest(list(journal.state.new))
        manifest.save()
        journal.state.digest = digest

    def apply_secret(self, journal: Journal, report: RotationReport) -> None:
        """One role: apply the Secret before its password changes (pods see it on restart only).

        A rejected apply (a field conflict, a forbidden Secret) stops the run here, with the
        role's password untouched.
        """
        state = journal.state
        target = self.delivery.apply(
            self.options.manifest, state.deployment, state.namespace, restart=False
        )
        state.applied = True
        report.target = target

    def db_set(self, journal: Journal, report: RotationReport) -> None:
        """Give the database role its new password (its value is durable in the journal)."""
        db = journal.state.db
        if db is None:
            return
        roles = self._roles(db)
        journal.state.db_touched = True
        journal.save()  # before ALTER ROLE: an abort then knows the role may have changed
        with self.options.progress(f"ALTER ROLE {db.role} at {db.target}"):
            roles.set_password(db.role, journal.state.new[DB_PASSWORD_KEY])

    def db_test(self, journal: Journal, report: RotationReport) -> None:
        """Log in with the new password before anything is promoted."""
        db = journal.state.db
        if db is None:
            return
        try:
            self._roles(db).test_login(db.role, journal.state.new[DB_PASSWORD_KEY])
        except RotationError as exc:
            raise RotationError(
                f"{exc}. The new password does not work, so nothing was promoted; run "
                "`yosai-secrets rotate --abort` to restore the old one, or fix and run rotate again"
            ) from None

    def db_cut(self, journal: Journal, report: RotationReport) -> None:
        """An incident: the leaked password stops logging in, and its open sessions end.

        One role: ``db-set`` already replaced its password. Alternating users: the role the app
        used (whose password leaked) loses its password (``PASSWORD NULL``: no password logs in
        as it; the next rotation gives it a new one). Then every session of that role is
        terminated, whatever password opened it.
        """
        db = journal.state.db
        if db is None:
            return
        roles = self._roles(db)
        leaked = db.active
        if db.mode is DbMode.ALTERNATING and db.active != db.role:
            roles.set_password(db.active, None)
            report.cut.append(f"role {db.active}: password removed (PASSWORD NULL)")
        else:
            report.cut.append(f"role {db.role}: password replaced")
        with self.options.progress(f"ending the sessions of {leaked} at {db.target}"):
            ended = roles.terminate_sessions(leaked)
        report.terminated_sessions += ended
        report.cut.append(f"role {leaked}: {ended} open session(s) terminated")

    def store_promote(self, journal: Journal, report: RotationReport) -> None:
        """Make the new values current in the store; the old ones stay readable."""
        state = journal.state
        self.store().promote(state.store, state.new, state.started_at)

    def invalidate(self, journal: Journal, report: RotationReport) -> None:
        """Forget this process's cached values; tell the processes the operator listed."""
        for key in journal.state.new:
            invalidate_secret(key)
        results = notify_all(self.options.environ)
        report.notified = [r.as_dict() for r in results]

    def apply(self, journal: Journal, report: RotationReport) -> None:
        """Apply the manifest, restart the deployment and wait for its rollout; record when."""
        state = journal.state
        applied_at = _stamp(self.options.clock())
        report.target = self.delivery.apply(
            self.options.manifest, state.deployment, state.namespace, restart=True
        )
        state.applied = report.applied = report.restarted = True
        # The first delivery is when the previous key stopped signing: a later re-apply of the
        # same values does not restart the sessions' clock.
        state.applied_at = state.applied_at or applied_at

    # -- finish ----------------------------------------------------------------------------------

    def finish_manifest(self, journal: Journal, report: RotationReport) -> None:
        """Drop the previous SECRET_KEY from the fallbacks."""
        state = journal.state
        manifest = SecretManifest(self.options.manifest)
        old_key = state.old["SECRET_KEY"]
        kept = [k for k in parse_fallbacks(manifest.get(FALLBACKS_KEY)) if k != old_key]
        state.finish_fallbacks = format_fallbacks(kept)
        manifest.set(FALLBACKS_KEY, state.finish_fallbacks, near="SECRET_KEY")
        state.digest = manifest.set_values_digest(list(state.new))
        manifest.save()

    def finish_store(self, journal: Journal, report: RotationReport) -> None:
        """Write the dropped fallbacks to the store and remove the old versions."""
        state = journal.state
        dropped = state.finish_fallbacks
        self.store().finish(state.store, {FALLBACKS_KEY: dropped} if dropped else {})
        if state.incident:
            report.purged.extend(self.store().purge(state.store, leaked_values(state)))

    def finish_db(self, journal: Journal, report: RotationReport) -> None:
        """Alternating users: the previous role stays, but no password logs in as it any more."""
        db = journal.state.db
        if db is not None and db.mode is DbMode.ALTERNATING and db.active != db.role:
            self._roles(db).set_password(db.active, None)

    # -- abort -----------------------------------------------------------------------------------

    def abort_manifest(self, journal: Journal, report: RotationReport) -> None:
        """Put every old value and rotation time back; remove entries the rotation added."""
        state = journal.state
        manifest = SecretManifest(self.options.manifest)
        for key, value in state.old.items():
            if key in state.absent:
                manifest.remove(key)
            else:
                manifest.set(key, value, near="SECRET_KEY")
        for key, stamp in state.annotations.items():
            manifest.set_annotation(key, stamp)
        held = [key for key in state.old if key not in state.absent]
        manifest.set_recorded_digest(state.old_digest, keys=held)
        manifest.save()

    def abort_store(self, journal: Journal, report: RotationReport) -> None:
        """Make the old values current in the store again, if the store was touched."""
        state = journal.state.store
        if state.get("entries") or "old_version" in state:
            self.store().abort(state, journal.state.old, journal.state.new)

    def abort_db(self, journal: Journal, report: RotationReport) -> None:
        """Restore the role's previous password (its exact verifier where it could be read)."""
        db = journal.state.db
        if db is None:
            return
        roles = self._roles(db)
        if db.previous_verifier:
            roles.set_verifier(db.role, db.previous_verifier)
        elif db.mode is DbMode.SINGLE:
            roles.set_password(db.role, journal.state.old[DB_PASSWORD_KEY])
        else:
            roles.set_password(db.role, None)

    # -- shared ----------------------------------------------------------------------------------

    def _roles(self, db: DatabasePlan) -> PostgresRoles:
        roles = self.options.roles()
        if roles is None:
            raise ConfigurationError(
                f"this rotation changes the database role {db.role!r} at {db.target}: give "
                f"the same admin connection ({DATABASE_URL_VARIABLE} or --database-url-file) to "
                "continue"
            )
        return roles


def leaked_values(state: RotationState) -> frozenset[str]:
    """The values an incident's rotation replaced: each old value, and every old fallback.

    Entries that are not secrets (``DB_USER`` in alternating mode) and placeholders are left out.
    """
    found: set[str] = set()
    for key, value in state.old.items():
        if key in state.plain or not value:
            continue
        found.update(parse_fallbacks(value) if key == FALLBACKS_KEY else [value])
    return frozenset(v for v in found if v and not is_placeholder(v))


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
