"""The incident's rotation as steps: what the no-grace rotation did, one outcome per concern.

:meth:`~yosai_secrets.rotation.RotationEngine.incident` runs the rotation protocol in one go; the
incident reports it as separate steps (rotate, cut the database credential, purge the store,
deliver to the cluster, tell running processes), each timed by the rotation's own steps. Also here:
where a new Auth0 client secret is stored (the manifest and the store, as rotation writes), and
delivering the manifest when only the Auth0 secret changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import ConfigurationError, YosaiSecretsError
from ..rotation import RotationEngine, RotationOptions, RotationReport
from ..secret import Secret
from .outcome import Status, StepOutcome

__all__ = ["auth0_persister", "deliver_only", "rotation_outcomes"]

_AUTH0_KEY = "AUTH0_CLIENT_SECRET"
_NOT_REACHED = "not reached: the rotation stopped before it (see the rotate step)"


def _now() -> datetime:
    return datetime.now(UTC)


class _Clock:
    """When each rotation step was durable; a step's span runs from one mark to another."""

    def __init__(self, started: datetime, times: Mapping[str, datetime]) -> None:
        self.started, self.times = started, times

    def span(self, first: str, last: str) -> tuple[datetime, datetime]:
        end = self.times.get(last) or _now()
        return self.times.get(first) or self.started, end


def rotation_outcomes(
    keys: list[str],
    result: RotationReport | None,
    error: YosaiSecretsError | None,
    started: datetime,
    times: Mapping[str, datetime],
) -> list[StepOutcome]:
    """The incident's steps from one no-grace rotation (``result``, or the ``error`` it raised)."""
    clock = _Clock(started, times)
    end = clock.span("prepare", "store-promote")[1]
    if result is None:
        detail = str(error) if error is not None else "the rotation did not run"
        failed = StepOutcome("rotate", Status.FAILED, detail, started, _now())
        return [failed, *(_not_reached(n) for n in ("cut", "purge", "deliver", "notify"))]
    outcomes = [_rotated(keys, result, started, end)]
    outcomes.append(_cut(keys, result, *clock.span("db-test", "db-cut")))
    if result.outcome == "awaiting-operator":
        return [*outcomes, *(_not_reached(n) for n in ("purge", "deliver", "notify"))]
    outcomes.append(_purge(result, *clock.span("finish-manifest", "finish-store")))
    outcomes.append(_deliver(result, *clock.span("invalidate", "apply")))
    outcomes.append(_notify(result, *clock.span("store-promote", "invalidate")))
    return outcomes


_NAMES = {
    "cut": "cut the leaked database credential",
    "purge": "purge the store's old versions",
    "deliver": "deliver to the cluster",
    "notify": "tell running processes",
}


def _not_reached(name: str) -> StepOutcome:
    now = _now()
    return StepOutcome(_NAMES[name], Status.SKIPPED, _NOT_REACHED, now, now)


def _rotated(
    keys: list[str], result: RotationReport, started: datetime, end: datetime
) -> StepOutcome:
    if result.outcome == "awaiting-operator":
        detail = f"held: {result.held_reason}; then run `{result.next_command}`"
        return StepOutcome("rotate", Status.MANUAL, detail, started, end)
    where = ["the manifest"]
    if result.store != "env":
        where.append(f"the {result.store} store")
    if result.database:
        db = result.database
        where.append(f"database role {db['role']} ({db['mode']} mode, {db['target']})")
    detail = f"{', '.join(keys)}: new values in {', '.join(where)}; no previous value kept"
    if "SECRET_KEY" in keys:
        detail += " (SECRET_KEY_FALLBACKS emptied: every session signed before is refused)"
    return StepOutcome("rotate", Status.DONE, detail, started, end)


def _cut(keys: list[str], result: RotationReport, begin: datetime, end: datetime) -> StepOutcome:
    name = _NAMES["cut"]
    if "DB_PASSWORD" not in keys:
        return StepOutcome(name, Status.SKIPPED, "DB_PASSWORD is not among the keys", begin, end)
    if "db-cut" in result.steps:
        return StepOutcome(name, Status.DONE, "; ".join(result.cut), begin, end)
    return StepOutcome(
        name,
        Status.MANUAL,
        "no database admin connection (ROTATION_DATABASE_URL or --database-url-file): change "
        "the role's password yourself, then end its sessions: SELECT pg_terminate_backend(pid) "
        "FROM pg_stat_activity WHERE usename = '<role>'",
        begin,
        end,
    )


def _purge(result: RotationReport, begin: datetime, end: datetime) -> StepOutcome:
    name = _NAMES["purge"]
    if result.store == "env":
        return StepOutcome(name, Status.SKIPPED, "SECRET_BACKEND=env: no store", begin, end)
    detail = "; ".join(result.purged) or f"no old version of the {result.store} store held one"
    return StepOutcome(name, Status.DONE, detail, begin, end)


def _deliver(result: RotationReport, begin: datetime, end: datetime) -> StepOutcome:
    name = _NAMES["deliver"]
    if result.applied and result.restarted:
        detail = f"applied server-side to {result.target}; deployment restarted, rollout complete"
        return StepOutcome(name, Status.DONE, detail, begin, end)
    reason = result.not_applied_reason or "the manifest was not applied"
    detail = (
        f"not applied ({reason}): run `yosai-secrets rotate --restart` where kubectl reaches the "
        "cluster, at once (the running pods still hold the leaked values)"
    )
    return StepOutcome(name, Status.MANUAL, detail, begin, end)


def _notify(result: RotationReport, begin: datetime, end: datetime) -> StepOutcome:
    return notified_outcome(result.notified, result.restarted, begin, end)


def notified_outcome(
    notified: list[dict[str, Any]], restarted: bool, begin: datetime, end: datetime
) -> StepOutcome:
    """The outcome of telling the listed processes (``notify.Notified.as_dict`` results)."""
    name = _NAMES["notify"]
    if not notified:
        why = "none listed in ROTATION_NOTIFY_URLS or ROTATION_NOTIFY_PIDFILE"
        if restarted:
            why += "; the rollout restart replaced the pods"
        return StepOutcome(name, Status.SKIPPED, why, begin, end)
    listed = ", ".join(f"{n['target']} ({n['detail']})" for n in notified)
    failed = [n for n in notified if not n["ok"]]
    if failed:
        shown = ", ".join(f"{n['target']} ({n['detail']})" for n in failed)
        return StepOutcome(
            name,
            Status.FAILED,
            f"NOT told (their caches keep the leaked values up to SECRET_CACHE_TTL): {shown}",
            begin,
            end,
        )
    return StepOutcome(name, Status.DONE, f"told: {listed}", begin, end)


def auth0_persister(
    options: RotationOptions, leaked: frozenset[str], purged: list[str]
) -> Callable[[Secret], None]:
    """Where a new Auth0 client secret goes: the manifest (when it holds the key) and the store.

    The store is written as a rotation writes it (prepare, stage, promote: a new Vault version,
    or a new AWS version made ``AWSCURRENT``); then its versions holding a ``leaked`` value are
    purged, as an incident's rotation purges its own (one line each appended to ``purged``).
    """

    def persist(secret: Secret) -> None:
        from ..rotation.manifest import SecretManifest
        from ..rotation.stores import open_store

        stamp = _now().replace(microsecond=0).isoformat().replace("+00:00", "Z")
        wrote = False
        if options.manifest.is_file():
            manifest = SecretManifest(options.manifest)
            if manifest.has(_AUTH0_KEY):
                manifest.set(_AUTH0_KEY, secret.reveal())
                manifest.set_annotation(_AUTH0_KEY, stamp)
                manifest.save()
                wrote = True
        store = options.store or open_store(options.environ)
        if store.name != "env":
            state: dict[str, Any] = {"backend": store.name}
            store.prepare(state, {_AUTH0_KEY: ""})
            store.stage(state, {_AUTH0_KEY: secret.reveal()})
            store.promote(state, {_AUTH0_KEY: secret.reveal()}, stamp)
            wrote = True
            purged.extend(store.purge(state, leaked))
        if not wrote:
            raise ConfigurationError(
                f"neither {options.manifest} nor a secret store (SECRET_BACKEND) holds {_AUTH0_KEY}"
            )

    return persist


def deliver_only(options: RotationOptions) -> list[StepOutcome]:
    """Apply the manifest and restart (no rotation ran: only the Auth0 secret changed); tell."""
    from ..rotation.delivery import Delivery
    from ..rotation.journal import journal_path
    from ..rotation.notify import notify_all

    started = _now()
    name = _NAMES["deliver"]
    possible, why = Delivery(options).possible()
    restarted = False
    if journal_path(options.manifest).exists():
        why = "a rotation is open; run `yosai-secrets rotate --restart` once it is finished"
        deliver = StepOutcome(name, Status.MANUAL, why, started, _now())
    elif not possible or not options.manifest.is_file():
        detail = f"not applied ({why or 'no manifest'}): run `yosai-secrets rotate --restart`"
        deliver = StepOutcome(name, Status.MANUAL, detail, started, _now())
    else:
        try:
            result = RotationEngine(options).restart()
            restarted = result.restarted
            detail = f"applied server-side to {result.target}; deployment restarted"
            deliver = StepOutcome(name, Status.DONE, detail, started, _now())
        except YosaiSecretsError as exc:
            deliver = StepOutcome(name, Status.FAILED, str(exc), started, _now())
    begin = _now()
    results = [n.as_dict() for n in notify_all(options.environ)]
    return [deliver, notified_outcome(results, restarted, begin, _now())]
