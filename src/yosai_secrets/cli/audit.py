"""``yosai-secrets audit``: who read which secret, and what in the audit logs looks wrong.

Reads our audit events (``YOSAI_AUDIT_LOG``) and OpenBao/Vault file audit-device logs, files or
directories, through :func:`yosai_secrets.audit.analyze.summarize`. Exit status: 0 when nothing
is flagged, 1 when something is, 2 on an error of ours (a missing or unreadable log, a bad
``--since``). Logs hold names and HMACs, never values, and so does the output.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape

from ..audit.analyze import AuditReport, Rules, summarize
from ..errors import YosaiSecretsError
from .output import console, table

__all__ = ["audit"]


@click.command()
@click.argument("logs", nargs=-1, required=True)
@click.option(
    "--since",
    metavar="DURATION|ISO",
    help="Report from this time on (7d, 24h, 30m, or 2026-11-29T10:00:00Z); earlier entries "
    "are the baseline. Default: the whole logs, their first half as the baseline.",
)
@click.option("--key", metavar="NAME", help="Only this secret (a key name or a Vault path).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--burst-count",
    type=click.IntRange(min=1),
    default=Rules.burst_count,
    show_default=True,
    help="Denied requests from one source that make a burst...",
)
@click.option(
    "--burst-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=Rules.burst_seconds,
    show_default=True,
    help="...within this many seconds.",
)
@click.pass_context
def audit(ctx: click.Context, /, **params: Any) -> None:
    """Summarise the audit LOGS (files or directories) and flag suspicious activity.

    Flags bursts of denied requests from one source, reads by a host or process never seen
    before the window, reads of an old version after a rotation, and a Vault token used from a
    new address. Exit 1 when anything is flagged, 0 when clean, 2 on an error.
    """
    try:
        report = summarize(
            params["logs"],
            since=params["since"],
            key=params["key"],
            rules=Rules(burst_count=params["burst_count"], burst_seconds=params["burst_seconds"]),
        )
    except YosaiSecretsError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        ctx.exit(2)
    if params["as_json"]:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print(report)
    ctx.exit(1 if report.flagged else 0)


def _print(report: AuditReport) -> None:
    out = console()
    window = _when(report.window_start) if report.window_start else "the start of the logs"
    out.print(
        f"{len(report.files)} file(s), {report.lines} line(s); window from {window} to "
        f"{_when(report.window_end)}; baseline before {_when(report.baseline_end)}"
    )
    keys = table("Secrets", ["key", "reads", "denied", "errors", "cache hits", "sources"])
    for name, counts in sorted(report.keys.items()):
        keys.add_row(
            name,
            str(counts.reads),
            str(counts.denied),
            str(counts.errors),
            str(counts.hits),
            ", ".join(sorted(counts.sources)) or "-",
        )
    out.print(keys)
    sources = table("Sources", ["source", "reads", "denied", "errors", "keys"])
    for name, source in sorted(report.sources.items()):
        sources.add_row(
            name,
            str(source.reads),
            str(source.denied),
            str(source.errors),
            str(len(source.keys)),
        )
    out.print(sources)
    if report.rotations:
        out.print(
            f"{len(report.rotations)} rotation(s) or new version(s) in the window, latest "
            f"{report.rotations[-1].key} at {_when(report.rotations[-1].time)}"
        )
    for note in report.notes:
        out.print(f"note: {note}")
    if not report.flags:
        out.print("nothing flagged")
        return
    # One line per flag, not a table: the reasons are sentences, and a narrow terminal would
    # cut them into a column of fragments.
    out.print(f"flagged: {len(report.flags)}")
    for flag in report.flags:
        text = f"{_when(flag.time)} {flag.source} {flag.key}: {flag.reason}"
        out.print(f"  [bold red]{flag.kind}[/] {escape(text)}", markup=True)


def _when(value: Any) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")
