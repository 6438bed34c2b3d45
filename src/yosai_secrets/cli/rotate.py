"""``yosai-secrets rotate``: rotate SECRET_KEY and the passwords, resumably; finish or abort."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import click

from ..rotation import DEFAULT_MANIFEST, RotationEngine, RotationOptions, RotationReport

__all__ = ["rotate"]


def _split(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()] or None


@click.command()
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_MANIFEST,
    show_default=True,
    help="The Kubernetes Secret manifest (created from its .example.yaml when missing).",
)
@click.option("--keys", help="Keys to rotate, comma-separated (default: SECRET_KEY and *PASSWORD).")
@click.option("--dry-run", is_flag=True, help="Show what would change (masked); write nothing.")
@click.option("--no-apply", is_flag=True, help="Do not run kubectl (apply or restart).")
@click.option("--finish", is_flag=True, help="Drop the previous values (after the pods restarted).")
@click.option("--abort", is_flag=True, help="Roll back to the previous values everywhere.")
@click.option(
    "--restart",
    is_flag=True,
    help="Apply the manifest and restart the deployment (after you changed a password by hand).",
)
@click.option(
    "--database-url",
    metavar="URL",
    help="Admin connection for ALTER ROLE (default: ROTATION_DATABASE_URL).",
)
@click.option(
    "--db-users",
    metavar="ROLE_A,ROLE_B",
    help="Alternating-users mode: two roles; the idle one gets the new password "
    "(default: ROTATION_DB_USERS).",
)
@click.option(
    "--deployment",
    metavar="NAME",
    help="Deployment to restart (default: ROTATION_DEPLOYMENT, else yosai-api).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rotate(
    manifest: Path,
    keys: str | None,
    dry_run: bool,
    no_apply: bool,
    finish: bool,
    abort: bool,
    restart: bool,
    database_url: str | None,
    db_users: str | None,
    deployment: str | None,
    as_json: bool,
) -> None:
    """Rotate secrets without downtime; re-run to resume after any interruption.

    New values for SECRET_KEY and every *PASSWORD key go into the manifest (the previous
    SECRET_KEY into SECRET_KEY_FALLBACKS), the secret store (SECRET_BACKEND) and the database role;
    if kubectl reaches a cluster the manifest is applied server-side and the deployment restarted.
    Run again with --finish once the pods run the new values.
    """
    _refuse_combinations(finish=finish, abort=abort, restart=restart, dry_run=dry_run)
    if restart and no_apply:
        raise click.UsageError("--restart and --no-apply cannot be combined")
    options = RotationOptions(
        manifest=manifest,
        keys=_split(keys),
        apply=not no_apply,
        deployment=deployment,
        database_url=database_url,
        db_users=_split(db_users),
        environ=os.environ,
    )
    report = _run(
        RotationEngine(options), finish=finish, abort=abort, restart=restart, dry_run=dry_run
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print(report)


def _refuse_combinations(*, finish: bool, abort: bool, restart: bool, dry_run: bool) -> None:
    """At most one action per run: ``--finish``, ``--abort``, ``--restart`` or ``--dry-run``."""
    flags = (
        ("--finish", finish),
        ("--abort", abort),
        ("--restart", restart),
        ("--dry-run", dry_run),
    )
    chosen = [name for name, on in flags if on]
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} cannot be combined")


def _run(
    engine: RotationEngine, *, finish: bool, abort: bool, restart: bool, dry_run: bool
) -> RotationReport:
    if finish:
        return engine.finish()
    if abort:
        return engine.abort()
    if restart:
        return engine.restart()
    return engine.rotate(dry_run=dry_run)


_HEADLINES = {
    "rotated": "Rotated {keys} in {manifest}.",
    "awaiting-operator": "Rotated {keys} in {manifest}; waiting for you before the restart.",
    "finished": "Finished the rotation of {keys}: the previous values are gone.",
    "aborted": "Aborted the rotation of {keys}: the previous values are back.",
    "restarted": "Applied {manifest} and restarted the deployment.",
    "not-applied": "Nothing was applied.",
    "nothing-to-do": "No rotation is in progress; nothing to do.",
    "dry-run": "Dry run: nothing was written. Rotate would change {keys} in {manifest}:",
}


def _print(report: RotationReport) -> None:
    """The report for a person: what happened, what reached the cluster, what to do next."""
    _print_resumption(report)
    _print_changes(report)
    for warning in report.warnings:
        click.secho(f"WARNING: {warning}", fg="yellow")
    _print_delivery(report)
    _print_next(report)


def _print_resumption(report: RotationReport) -> None:
    if report.created_manifest:
        click.echo(f"Created {report.manifest} from its example (mode 0600).")
    if report.resumed and report.action == "restart":
        click.echo(f"Continuing the rotation that waited for you (journal: {report.journal}).")
    elif report.resumed:
        click.echo(f"Resumed an interrupted {report.action} (journal: {report.journal}).")


def _print_changes(report: RotationReport) -> None:
    """The headline, then each key changed and where the new values went."""
    headline = _HEADLINES.get(report.outcome, report.outcome)
    click.secho(
        headline.format(keys=", ".join(report.keys) or "-", manifest=report.manifest),
        fg="green" if report.outcome in ("rotated", "finished", "aborted", "restarted") else None,
    )
    for change in report.changes:
        click.echo(f"  {change['key']}: {change['old']} -> {change['new']}")
    if report.steps and report.outcome != "dry-run":
        click.echo(f"  steps done: {', '.join(report.steps)}")
    if report.outcome == "rotated" and "SECRET_KEY" in report.keys:
        click.echo("  the previous SECRET_KEY is kept in SECRET_KEY_FALLBACKS until --finish")
    if report.store != "env":
        click.echo(f"  secret store: {report.store}")
    if report.database:
        db = report.database
        click.echo(f"  database: {db['mode']} mode, role {db['role']} at {db['target']}")


def _print_delivery(report: RotationReport) -> None:
    """Whether the manifest was applied and the deployment restarted, and what is left to run."""
    if report.applied and report.restarted:
        click.echo(
            "The manifest was applied (server-side) and the deployment restarted "
            "(rollout status confirmed)."
        )
    elif report.applied:
        click.secho(
            "The manifest was applied (server-side); the deployment was NOT restarted.",
            fg="yellow",
        )
        _print_commands("Once the role's password matches, run:", report.commands_later)
    elif report.not_applied_reason and report.outcome != "nothing-to-do":
        click.secho(f"The manifest was not applied: {report.not_applied_reason}.", fg="yellow")
        _print_commands(
            "Run this later to apply it:" if report.outcome != "dry-run" else "It would run:",
            report.commands_later,
        )


def _print_commands(intro: str, commands: Sequence[str]) -> None:
    if commands:
        click.echo(intro)
        for command in commands:
            click.echo(f"  {command}")


def _print_next(report: RotationReport) -> None:
    if report.outcome in ("rotated", "awaiting-operator") and report.journal:
        click.echo(f"Journal (mode 0600, holds old and new values until done): {report.journal}")
    if report.outcome == "rotated" and report.applied and not report.restarted:
        click.echo(
            "Next: `yosai-secrets rotate --restart` once the role's password matches, then "
            "`yosai-secrets rotate --finish` when sessions signed with the old key have expired."
        )
    elif report.outcome == "rotated":
        click.echo(
            "Next: once the pods run the new values and sessions signed with the old key have "
            "expired, run `yosai-secrets rotate --finish` (or --abort to roll back)."
        )
