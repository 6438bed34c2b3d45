"""``yosai-secrets incident``: one command for a leaked secret, each step reported as it ends.

The operator guide's procedure, in order:

1. **capture** the leaked values (in memory only: the scan and the revocations look for them);
2. **Auth0**: rotate the client secret with the Management API when it leaked (before the
   rotation, so that the manifest the rotation applies carries the new one);
3. **rotate** now, with no grace (:meth:`~yosai_secrets.rotation.RotationEngine.incident`): no
   fallback kept, then, from that run's report: **cut** the leaked database password and its
   open sessions, **purge** the store's versions holding leaked values, **deliver** (apply,
   restart) and **tell** running processes (``ROTATION_NOTIFY_URLS``, pidfile);
4. **revoke** the Vault token or AppRole secret id when they leaked, and leases under
   ``--revoke-prefix``;
5. **scan** the given logs (and the repository's history with ``--git``) for the leaked values in
   every encoding;
6. the **audit summary** of the keys over the last days, when an audit log exists;
7. **record** the incident in the audit log (who, why, what).

A failed step does not stop the others; each ends as a :class:`~.outcome.StepOutcome` (done,
failed, skipped or manual) and the report (:mod:`.incident_report`) lists them with the manual
steps left. No value is ever in a step's detail, the report or a log line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from ..errors import ConfigurationError, YosaiSecretsError
from ..rotation import RotationEngine, RotationOptions, RotationReport
from .incident_capture import Leaked, capture_leaked
from .incident_rotation import rotation_outcomes
from .outcome import Status, StepOutcome

__all__ = [
    "AUTH0_KEY",
    "GUIDE_MANUAL_STEPS",
    "IncidentOptions",
    "IncidentReport",
    "check_incident",
    "run_incident",
]

AUTH0_KEY: Final = "AUTH0_CLIENT_SECRET"
#: Keys the revocation steps handle (they are not in the manifest).
_REVOKED_KEYS: Final = frozenset({"VAULT_TOKEN", "VAULT_SECRET_ID"})
#: What stays for a person, whatever the run did (the operator guide's incident procedure).
GUIDE_MANUAL_STEPS: Final = (
    "Notify the security team (and whoever the incident policy names) with this report.",
    "Investigate the source of the leak: where the value was found (below), who could read it, "
    "and the audit summary; close that path.",
)


@dataclass
class IncidentOptions:
    """What the incident covers and where it reports.

    Args:
        keys: the leaked keys (``DB_PASSWORD``, ``SECRET_KEY``, ``AUTH0_CLIENT_SECRET``...).
        rotation: how to rotate (manifest, cluster, database, store, environment).
        logs: files or directories to scan for the leaked values.
        git: also scan the whole history of the repository the working directory is in.
        revoke_prefix: revoke every Vault lease under this prefix.
        reason: why (recorded in the audit log and the report).
        report_dir: where ``incident-<UTC time>.md`` and ``.json`` go.
        audit_days: how many days back the audit summary reaches.
        on_step: called with each step's outcome as soon as it ends.
    """

    keys: Sequence[str]
    rotation: RotationOptions = field(default_factory=RotationOptions)
    logs: Sequence[Path] = ()
    git: bool = False
    revoke_prefix: str | None = None
    reason: str = ""
    report_dir: Path = Path()
    audit_days: int = 7
    on_step: Callable[[StepOutcome], None] | None = None

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment the incident reads (the rotation's)."""
        return self.rotation.environ


@dataclass
class IncidentReport:
    """What the incident did, step by step; never a value."""

    keys: list[str]
    reason: str
    started: datetime
    steps: list[StepOutcome] = field(default_factory=list)
    rotation: RotationReport | None = None
    findings: list[Any] = field(default_factory=list)  # audit.scan.Finding
    audit_summary: Any = None
    audit_note: str = ""
    captured: dict[str, list[str]] = field(default_factory=dict)  # key -> where its value was
    purged: list[str] = field(default_factory=list)  # store versions purged outside the rotation
    finished: datetime | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[StepOutcome]:
        """The steps that were tried and did not succeed."""
        return [s for s in self.steps if s.failed]

    @property
    def exit_code(self) -> int:
        """0 when every step is done, skipped or manual; 1 when one failed."""
        return 1 if self.failed else 0

    def manual_steps(self) -> list[str]:
        """What is left for a person: the guide's steps, then each manual or failed step's."""
        left = list(GUIDE_MANUAL_STEPS)
        left += [f"{s.step}: {s.detail}" for s in self.steps if s.status is Status.MANUAL]
        left += [f"FAILED, do it by hand: {s.step}: {s.detail}" for s in self.failed]
        if self.audit_summary and self.audit_note:
            left.append(self.audit_note)
        if self.findings:
            left.append(
                "Remove the leaked value from every file listed under 'Where the value was "
                "found' (and treat a git history holding it as public: rewriting it does not "
                "recall clones)."
            )
        return left


def check_incident(options: IncidentOptions) -> None:
    """Refuse, before anything is done, what cannot work (the CLI exits 2).

    Raises:
        ConfigurationError: no key, a key that is not rotated itself, a path to scan that does
            not exist, or a report directory that is not a directory.
    """
    if not options.keys:
        raise ConfigurationError("name at least one leaked key, e.g. DB_PASSWORD or SECRET_KEY")
    from ..rotation.generate import FALLBACKS_KEY

    if FALLBACKS_KEY in options.keys:
        raise ConfigurationError(
            f"{FALLBACKS_KEY} is not a key of its own: name SECRET_KEY (an incident drops every "
            "fallback)"
        )
    missing = [str(p) for p in options.logs if not p.exists()]
    if missing:
        raise ConfigurationError(f"--logs: no such file or directory: {', '.join(missing)}")
    if options.report_dir.exists() and not options.report_dir.is_dir():
        raise ConfigurationError(f"--report-dir {options.report_dir} is not a directory")


def run_incident(options: IncidentOptions) -> IncidentReport:
    """Run every step (a failed one does not stop the others); write no file.

    See :func:`.incident_report.write_reports` for the report files.

    Raises:
        ConfigurationError: as :func:`check_incident`, before any step.
    """
    check_incident(options)
    report = IncidentReport(list(options.keys), options.reason, datetime.now(UTC))
    leaked = _capture(options, report)
    dead = _auth0(options, report, leaked)  # keys whose leaked values no longer work
    dead |= _rotate(options, report)
    _revoke(options, report, leaked)
    _add(options, report, _scan(options, report, leaked, dead))
    _add(options, report, _audit_summary(options, report))
    _add(options, report, _record(options, report))
    report.finished = datetime.now(UTC)
    return report


def _add(options: IncidentOptions, report: IncidentReport, outcome: StepOutcome | None) -> None:
    if outcome is None:
        return
    report.steps.append(outcome)
    if options.on_step is not None:
        options.on_step(outcome)


def _now() -> datetime:
    return datetime.now(UTC)


# -- capture -----------------------------------------------------------------------------------


def _capture(options: IncidentOptions, report: IncidentReport) -> dict[str, Leaked]:
    started = _now()
    leaked = capture_leaked(options.keys, options.environ, options.rotation.manifest)
    report.captured = {k: list(v.sources) for k, v in leaked.items()}
    count = sum(len(v.values) for v in leaked.values())
    empty = [k for k, v in leaked.items() if not v.values]
    detail = f"{count} leaked value(s) of {len(leaked)} key(s), held in memory only"
    if empty:
        detail += f"; no value found for {', '.join(empty)} (nothing to scan for)"
    _add(options, report, StepOutcome("capture", Status.DONE, detail, started, _now()))
    return leaked


# -- Auth0 -------------------------------------------------------------------------------------


def _auth0(
    options: IncidentOptions, report: IncidentReport, leaked: Mapping[str, Leaked]
) -> set[str]:
    if AUTH0_KEY not in options.keys:
        return set()
    from .incident_rotation import auth0_persister
    from .revoke import rotate_auth0_client_secret

    purged: list[str] = []
    values = frozenset(v.reveal() for v in leaked[AUTH0_KEY].values)
    persist = auth0_persister(options.rotation, values, purged)
    outcome = rotate_auth0_client_secret(options.environ, persist, options.report_dir)
    _add(options, report, outcome)
    if purged:
        report.purged.extend(purged)
        step = f"purge the store's old versions ({AUTH0_KEY})"
        _add(options, report, StepOutcome(step, Status.DONE, "; ".join(purged), outcome.finished))
    return {AUTH0_KEY} if outcome.status is Status.DONE else set()


# -- rotate ------------------------------------------------------------------------------------


def _rotation_keys(options: IncidentOptions) -> tuple[list[str], list[str]]:
    """(keys the rotation changes: those the manifest holds; keys nobody here can rotate)."""
    from ..rotation.manifest import SecretManifest
    from ..rotation.plan import example_for

    path = options.rotation.manifest
    source = path if path.is_file() else example_for(path)
    held = SecretManifest(source).keys() if source.is_file() else []
    candidates = [k for k in options.keys if k != AUTH0_KEY and k not in _REVOKED_KEYS]
    return [k for k in candidates if k in held], [k for k in candidates if k not in held]


def _rotate(options: IncidentOptions, report: IncidentReport) -> set[str]:
    """Run the no-grace rotation; add its steps. The keys whose values it replaced."""
    started = _now()
    try:
        keys, foreign = _rotation_keys(options)
    except YosaiSecretsError as exc:
        _add(options, report, StepOutcome("rotate", Status.FAILED, str(exc), started, _now()))
        return set()
    for key in foreign:
        detail = f"{key} is not in {options.rotation.manifest}: rotate it where it is issued"
        _add(options, report, StepOutcome(f"rotate {key}", Status.MANUAL, detail, started, _now()))
    if not keys:
        if AUTH0_KEY in options.keys:
            from .incident_rotation import deliver_only

            for outcome in deliver_only(options.rotation):
                _add(options, report, outcome)
        return set()
    times: dict[str, datetime] = {}
    rotation = dataclasses.replace(
        options.rotation, keys=keys, reason=options.reason, after_step=_timer(times, options)
    )
    try:
        result = RotationEngine(rotation).incident()
        error = None
    except YosaiSecretsError as exc:
        result, error = None, exc
    report.rotation = result
    for outcome in rotation_outcomes(keys, result, error, started, times):
        _add(options, report, outcome)
    return set(keys) if result is not None and result.outcome == "finished" else set()


def _timer(times: dict[str, datetime], options: IncidentOptions) -> Callable[[str], None]:
    """An ``after_step`` hook recording when each rotation step was durable."""
    chained = options.rotation.after_step

    def hook(step: str) -> None:
        times[step] = _now()
        if chained is not None:
            chained(step)

    return hook


# -- revoke ------------------------------------------------------------------------------------


def _revoke(options: IncidentOptions, report: IncidentReport, leaked: Mapping[str, Leaked]) -> None:
    from .revoke import LEASES_STEP, revoke_leases, revoke_vault_token

    values = {k: v.current[0].reveal() for k, v in leaked.items() if v.current}
    _add(options, report, revoke_vault_token(options.environ, values))
    if options.revoke_prefix:
        _add(options, report, revoke_leases(options.environ, options.revoke_prefix))
    else:
        now = _now()
        why = "no --revoke-prefix given"
        _add(options, report, StepOutcome(LEASES_STEP, Status.SKIPPED, why, now, now))


# -- scan --------------------------------------------------------------------------------------


def _scan(
    options: IncidentOptions,
    report: IncidentReport,
    leaked: Mapping[str, Leaked],
    dead: set[str],
) -> StepOutcome:
    started = _now()
    if not options.logs and not options.git:
        return StepOutcome("scan", Status.SKIPPED, "no --logs and no --git", started, _now())
    from .scan import SecretValues, scan_paths

    # Still live: the value of a key that was not replaced (or whose rotation did not complete).
    secrets = {
        key: SecretValues((), v.values) if key in dead else SecretValues(v.values, ())
        for key, v in leaked.items()
        if v.values
    }
    paths = list(options.logs) or [Path.cwd()]
    try:
        findings = scan_paths(
            paths, secrets, git=options.git, shapes=False, exclude=[options.rotation.manifest]
        )
    except YosaiSecretsError as exc:
        return StepOutcome("scan", Status.FAILED, str(exc), started, _now())
    report.findings = findings
    where = " and the repository's history" if options.git else ""
    files = len({f.path for f in findings})
    detail = f"{len(findings)} finding(s) in {files} file(s) of {len(paths)} path(s){where}"
    return StepOutcome("scan", Status.DONE, detail, started, _now())


# -- audit summary -----------------------------------------------------------------------------


def _audit_summary(options: IncidentOptions, report: IncidentReport) -> StepOutcome:
    from .analyze import summarize

    started = _now()
    step = "audit summary"
    log = options.environ.get("YOSAI_AUDIT_LOG", "").strip()
    if not log or not Path(log).is_file():
        report.audit_note = "no audit log (YOSAI_AUDIT_LOG) to summarize"
        return StepOutcome(step, Status.SKIPPED, report.audit_note, started, _now())
    since = started - timedelta(days=options.audit_days)
    try:
        summaries = {key: summarize([Path(log)], since=since, key=key) for key in options.keys}
    except YosaiSecretsError as exc:
        return StepOutcome(step, Status.FAILED, str(exc), started, _now())
    report.audit_summary = summaries
    flags = sum(len(s.flags) for s in summaries.values())
    detail = f"{log}, last {options.audit_days} days, {len(summaries)} key(s): {flags} flag(s)"
    if flags:
        report.audit_note = (
            f"{flags} suspicious pattern(s) flagged: review them (`yosai-secrets audit {log}`)"
        )
    return StepOutcome(step, Status.DONE, detail, started, _now())


# -- record ------------------------------------------------------------------------------------


def _record(options: IncidentOptions, report: IncidentReport) -> StepOutcome:
    from .events import emit_operation

    started = _now()
    outcome = "failed" if report.failed else "done"
    details = {
        "steps": [{"step": s.step, "status": str(s.status)} for s in report.steps],
        "findings": len(report.findings),
        "terminated_sessions": report.rotation.terminated_sessions if report.rotation else 0,
    }
    emit_operation(
        "incident",
        keys=report.keys,
        reason=options.reason or None,
        outcome=outcome,
        details=details,
    )
    return StepOutcome("record", Status.DONE, "recorded in the audit log", started, _now())
