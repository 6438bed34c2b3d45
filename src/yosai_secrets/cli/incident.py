"""``yosai-secrets incident``: rotate with no grace, revoke, cut sessions, scan and report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import YosaiSecretsError
from .rotate import build_options, refuse_database_url, shared_options

if TYPE_CHECKING:
    from ..audit.incident import IncidentOptions

__all__ = ["incident"]

_MARKS = {
    "done": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "skipped": "[dim]-[/]",
    "manual": "[yellow]![/]",
}


@click.command()
@click.argument("keys", nargs=-1, required=True)
@click.option(
    "--logs",
    type=click.Path(path_type=Path),
    multiple=True,
    metavar="PATH",
    help="A log file or directory to scan for the leaked values (repeat for several).",
)
@click.option("--git", is_flag=True, help="Also scan the repository's whole git history.")
@click.option("--revoke-prefix", metavar="PREFIX", help="Revoke every Vault lease under PREFIX.")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    help="Where incident-<UTC time>.md and .json go (default: the working directory).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (steps on stderr).")
@shared_options
@click.pass_context
def incident(ctx: click.Context, /, keys: tuple[str, ...], **params: Any) -> None:
    """Respond to leaked secrets KEY... in one command; each step is shown as it ends.

    Rotates the keys now with no grace (no SECRET_KEY fallback kept; the leaked database
    password stops working and every open session of its role is terminated; store versions
    holding a leaked value are destroyed or unlabelled), applies the manifest and restarts the
    deployment when a cluster is reachable, tells running processes, revokes the Vault token or
    AppRole secret id when they leaked (and leases under --revoke-prefix), rotates the Auth0
    client secret when AUTH0_CLIENT_SECRET is named, scans --logs (and --git) for the leaked
    values in every encoding, and writes incident-<UTC time>.md and .json (mode 0600). A failed
    step does not stop the others. See docs/incident-response.md.

    \b
    Exit status:
      0  every step done, skipped or left manual (the report lists what is left)
      1  a step failed (the report says which, and what to do by hand)
      2  nothing was done: the command was refused before the first step
    """
    from ..audit.incident import check_incident, run_incident
    from ..audit.incident_report import report_dict, write_reports

    out = _StepPrinter(to_stderr=params["as_json"])
    try:
        options = _options(keys, params, out)
        check_incident(options)
    except YosaiSecretsError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        ctx.exit(2)
    out.begin(options.keys)
    report = run_incident(options)
    try:
        written = write_reports(report, options.report_dir)
    except OSError as exc:
        click.secho(
            f"error: cannot write the report in {options.report_dir}: {exc.strerror}", err=True
        )
        ctx.exit(1)
    if params["as_json"]:
        click.echo(
            json.dumps({**report_dict(report), "files": [str(p) for p in written]}, indent=2)
        )
    else:
        out.end(report, written)
    ctx.exit(report.exit_code)


def _options(keys: tuple[str, ...], params: dict[str, Any], out: _StepPrinter) -> IncidentOptions:
    """The incident's options from the command line."""
    from ..audit.incident import IncidentOptions

    refuse_database_url(params)
    return IncidentOptions(
        keys=_keys(keys),
        rotation=build_options(params),
        logs=list(params["logs"]),
        git=params["git"],
        revoke_prefix=params["revoke_prefix"],
        reason=params["reason"] or "",
        report_dir=params["report_dir"],
        on_step=out.step,
    )


def _keys(raw: tuple[str, ...]) -> list[str]:
    """KEY arguments, also comma-separated, each once, in order."""
    keys = [part.strip() for item in raw for part in item.split(",") if part.strip()]
    return list(dict.fromkeys(keys))


class _StepPrinter:
    """One line per step as it ends (rich), on stdout, or on stderr with --json."""

    def __init__(self, *, to_stderr: bool) -> None:
        from rich.console import Console

        self.console = Console(stderr=to_stderr, highlight=False, soft_wrap=True)

    def begin(self, keys: Sequence[str]) -> None:
        self.console.print(f"Incident: {', '.join(keys)}", markup=False)

    def step(self, outcome: Any) -> None:
        from rich.text import Text

        seconds = (outcome.finished - outcome.started).total_seconds()
        line = Text.from_markup(_MARKS.get(str(outcome.status), "?") + " ")
        line.append(f"{outcome.step}: {str(outcome.status).upper()} ({seconds:.1f} s)")
        if outcome.detail:
            line.append(f" - {outcome.detail}")
        self.console.print(line)

    def end(self, report: Any, written: list[Path]) -> None:
        failed = [s.step for s in report.failed]
        if failed:
            self.console.print(f"FAILED: {', '.join(failed)}", style="red", markup=False)
        self.console.print("Left for you:", markup=False)
        for step in report.manual_steps():
            self.console.print(f"  - {step}", markup=False)
        self.console.print(f"Report: {', '.join(str(p) for p in written)}", markup=False)
