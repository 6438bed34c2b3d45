"""What a rotation did (or, for a dry run, would do), without a single value in it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..secret import MASK
from .generate import DEFAULT_NBYTES, FALLBACKS_KEY
from .journal import Journal
from .kubectl import later_commands
from .manifest import SecretManifest
from .plan import DB_PASSWORD_KEY, RotationOptions, default_keys, example_for
from .postgres import DATABASE_URL_VARIABLE

if TYPE_CHECKING:
    from .stores import Store

__all__ = ["Outcome", "RotationReport", "dry_run_report", "hold_warnings"]


class Outcome(StrEnum):
    """How a ``rotate`` run ended."""

    PENDING = "pending"  # still running (never in a returned report)
    ROTATED = "rotated"
    AWAITING_OPERATOR = "awaiting-operator"
    FINISHED = "finished"
    ABORTED = "aborted"
    RESTARTED = "restarted"
    NOT_APPLIED = "not-applied"
    NOTHING_TO_DO = "nothing-to-do"
    DRY_RUN = "dry-run"


@dataclass
class RotationReport:
    """The outcome of one ``rotate`` run: steps done, where it stands, what the operator must do."""

    action: str
    manifest: str
    outcome: Outcome = Outcome.PENDING
    keys: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    resumed: bool = False
    created_manifest: bool = False
    applied: bool = False
    restarted: bool = False
    not_applied_reason: str = ""
    commands_later: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    store: str = "env"
    database: dict[str, str] | None = None
    journal: str = ""
    changes: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (no values: there are none in a report)."""
        return asdict(self)


def dry_run_report(
    options: RotationOptions, journal: Journal | None, store: Store
) -> RotationReport:
    """Describe what ``rotate`` would do now, masked; nothing is written."""
    report = RotationReport("rotate", manifest=str(options.manifest), outcome=Outcome.DRY_RUN)
    report.store = store.name
    if journal is not None:
        _describe_resumption(report, journal)
        return report
    path = options.manifest
    source = path if path.exists() else example_for(path)
    if not path.exists():
        report.warnings.append(f"{path} does not exist; it would be created from {source}")
    manifest = SecretManifest(source)
    keys = list(options.keys) if options.keys else default_keys(manifest)
    report.keys = keys
    report.changes = _masked_changes(keys)
    _describe_database(report, options, keys)
    report.commands_later = later_commands(
        Path(path), options.deployment_name(), manifest.namespace()
    )
    if not options.apply:
        report.not_applied_reason = "--no-apply was given"
    return report


def _describe_resumption(report: RotationReport, journal: Journal) -> None:
    """A rotation is open: ``rotate`` would resume it rather than start another."""
    done: list[str] = list(journal.done_steps())
    report.keys = list(journal.state.keys)
    report.steps = done
    report.journal = str(journal.path)
    report.warnings.append(
        f"a rotation is in progress (phase {journal.phase}, done: {', '.join(done)}); "
        "rotate would resume it, --abort would roll it back"
    )


def _masked_changes(keys: list[str]) -> list[dict[str, str]]:
    bits = DEFAULT_NBYTES * 8
    changes = [
        {"key": key, "old": MASK, "new": f"{MASK} (new random value, {bits} bits)"} for key in keys
    ]
    if "SECRET_KEY" in keys:
        changes.append(
            {"key": FALLBACKS_KEY, "old": MASK, "new": f"{MASK} (+ the previous SECRET_KEY)"}
        )
    return changes


def _describe_database(report: RotationReport, options: RotationOptions, keys: list[str]) -> None:
    """Which role's password would change, or a warning that none would."""
    # Read whatever the keys: a bad database URL fails the dry run as it fails the rotation.
    roles = options.roles()
    if DB_PASSWORD_KEY not in keys:
        return
    if roles is None:
        report.warnings.append(
            f"{DB_PASSWORD_KEY}: no database connection is configured; the role's password "
            "would NOT be changed and the restart would be left to you (--restart)"
        )
    else:
        mode = "alternating" if options.alternating_users() else "single"
        report.database = {"mode": mode, "role": "(from DB_USER)", "target": roles.target}


def hold_warnings(unmanaged: list[str]) -> list[str]:
    """What the operator must do by hand for passwords this tool cannot change where checked."""
    warnings: list[str] = []
    for key in unmanaged:
        if key == DB_PASSWORD_KEY:
            warnings.append(
                f"{key}: the new password is in the manifest, but no database connection is "
                f"configured ({DATABASE_URL_VARIABLE} or --database-url), so the role's "
                "password was NOT changed. Change the role's password to the manifest's new "
                "value BEFORE the pods restart, then run `yosai-secrets rotate --restart`."
            )
        else:
            warnings.append(
                f"{key}: the new password is in the manifest only; change it where it is "
                "checked BEFORE the pods restart, then run `yosai-secrets rotate --restart`."
            )
    return warnings
