"""The summary ``yosai-secrets rotate`` prints: what was done, what was held and why, what next.

One summary per run, in this order: the headline, the values changed (masked), the steps done,
where the values went (store, database, cluster, processes told), why the run held, notes and
warnings, then the single command to run next. Nothing in it contradicts another line: a step that
had nothing to do is not listed as done, and "not applied" is said once, with its reason.
"""

from __future__ import annotations

from typing import Any

import click

from ..rotation import RotationReport

__all__ = ["print_report"]

_HEADLINES = {
    "rotated": "Rotated {keys} in {manifest}.",
    "awaiting-operator": "Staged {keys} in {manifest}; the rotation holds (not in effect yet).",
    "finished": "Finished the rotation of {keys}: the previous values are gone.",
    "aborted": "Aborted the rotation of {keys}: the previous values are back.",
    "restarted": "Applied {manifest} and restarted the deployment.",
    "nothing-to-do": "No rotation is in progress; nothing to do.",
    "set-up": "Alternating users are set up.",
    "refused": "It would refuse.",
}
_EXIT_MEANING = {0: "done", 2: "refused", 3: "held"}
_GREEN = ("rotated", "finished", "aborted", "restarted", "set-up")


def print_report(report: RotationReport) -> None:
    """Print ``report`` for a person (values never appear: a report holds none)."""
    _headline(report)
    for change in report.changes:
        click.echo(f"  {change['key']}: {change['old']} -> {change['new']}")
    _steps(report)
    _where(report)
    _told(report)
    if report.held_reason:
        click.secho(f"Why it holds: {report.held_reason}.", fg="yellow")
    if report.refusal:
        click.secho(f"It would stop with: error: {report.refusal}", fg="yellow")
    for note in report.notes:
        click.echo(f"Note: {note}")
    for warning in report.warnings:
        click.secho(f"WARNING: {warning}", fg="yellow")
    _next(report)


def _headline(report: RotationReport) -> None:
    if report.created_manifest and not report.dry_run:
        click.echo(f"Created {report.manifest} from its example (mode 0600).")
    if report.resumed and not report.dry_run:
        click.echo(f"Resumed an interrupted {report.action} (journal: {report.journal}).")
    headline = _HEADLINES.get(report.outcome, str(report.outcome))
    if report.action == "restart" and report.outcome == "rotated":
        headline = "Continued the rotation of {keys}."
    text = headline.format(keys=", ".join(report.keys) or "-", manifest=report.manifest)
    if report.dry_run:
        code = report.exit_code
        run = "rotate" if report.action == "rotate" else f"rotate --{report.action}"
        keys = ", ".join(report.keys) or "-"
        text = (
            f"Dry run: nothing was written. `yosai-secrets {run}` on {keys} would end "
            f"{report.outcome}, exit status {code} ({_EXIT_MEANING.get(code, '?')})."
        )
    click.secho(text, fg="green" if report.outcome in _GREEN and not report.dry_run else None)


def _steps(report: RotationReport) -> None:
    if report.steps:
        verb = "Would do" if report.dry_run else "Done"
        click.echo(f"{verb}: {', '.join(report.steps)}.")
    if report.dry_run and report.skipped:
        click.echo(f"Nothing to do for: {'; '.join(report.skipped)}.")


def _where(report: RotationReport) -> None:
    """The store, the database role, the cluster: one line each, when they matter."""
    if report.store != "env":
        click.echo(f"Secret store: {report.store}.")
    db = report.database
    if db and report.action == "setup-alternating":
        click.echo(f"Database: roles {db['role']} at {db['target']}.")
    elif db:
        click.echo(f"Database: {db['mode']} mode, role {db['role']} at {db['target']}.")
    if report.applied and report.restarted:
        click.echo(
            f"Cluster ({report.target}): applied server-side, deployment restarted, rollout "
            "complete."
        )
    elif report.applied:
        click.echo(f"Cluster ({report.target}): the Secret was applied; no restart yet.")
    elif report.not_applied_reason:
        would = "would not be" if report.dry_run else "was not"
        click.secho(
            f"The manifest {would} applied to the cluster: {report.not_applied_reason}.",
            fg="yellow",
        )


def _told(report: RotationReport) -> None:
    told = [n for n in report.notified if n["ok"]]
    failed = [n for n in report.notified if not n["ok"]]
    if told:
        click.echo(f"Told to drop cached secrets: {_list(told)}.")
    if failed:
        click.secho(f"NOT told (their caches keep old values): {_list(failed)}.", fg="yellow")
    invalidated = any(str(step).endswith("invalidate") for step in report.steps)
    if invalidated and not report.notified and not report.restarted and report.store != "env":
        click.echo(
            "No running process was told to drop its cache (none listed in "
            "ROTATION_NOTIFY_URLS or ROTATION_NOTIFY_PIDFILE): processes that read the store "
            "keep cached values up to SECRET_CACHE_TTL."
        )


def _list(results: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['target']} ({r['detail']})" for r in results)


def _next(report: RotationReport) -> None:
    if report.next_command and not report.dry_run:
        note = f" {report.next_note}" if report.next_note else ""
        click.echo(f"Next: `{report.next_command}`{note}.")
    elif report.next_command:
        click.echo(f"It would then say to run `{report.next_command}`.")
    if report.journal and report.outcome in ("rotated", "awaiting-operator") and not report.dry_run:
        click.echo(f"Journal (mode 0600, holds old and new values until the end): {report.journal}")
