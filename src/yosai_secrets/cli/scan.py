"""``yosai-secrets scan``: where did our secrets (or anything shaped like one) end up?

Exit status: 0 clean, 1 when something was found, 2 on an error of ours (a missing path, an
unreachable store, ``--git`` outside a repository). Never prints a value.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import click

from ..audit.known import source_files
from ..audit.scan import DEFAULT_MAX_BYTES, Finding, SecretValues, known_values, scan_paths
from ..errors import YosaiSecretsError

__all__ = ["sarif", "scan"]

SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--git", "history", is_flag=True, help="Also scan every commit of the repository.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option(
    "--sarif",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the findings as SARIF 2.1.0 to this file (mode 0600).",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Kubernetes Secret manifest (default: k8s/config/api-secrets.yaml when it exists).",
)
@click.option("--no-values", is_flag=True, help="Do not read the configured secrets: shapes only.")
@click.option("--no-shapes", is_flag=True, help="Only our own values, no credential shapes.")
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_BYTES,
    show_default=True,
    help="Skip files larger than this.",
)
@click.pass_context
def scan(ctx: click.Context, /, **params: Any) -> None:
    """Find the configured secrets' values (in common encodings) and credential shapes in PATHS.

    Each finding names the file, the line, the secret or shape, the encoding and whether the
    value is live (the secret's current value: rotate it now). Exit 1 when anything is found.
    """
    try:
        findings, searched = _run(params)
    except YosaiSecretsError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        ctx.exit(2)
    if params["sarif"] is not None:
        from ..fileio import atomic_write_text

        text = json.dumps(sarif(findings), indent=2) + "\n"
        atomic_write_text(params["sarif"], text, mode=0o600, what="the SARIF report")
    if params["as_json"]:
        click.echo(json.dumps(_as_json(findings, searched), indent=2))
    else:
        _print(findings, searched)
    ctx.exit(1 if findings else 0)


def _run(params: dict[str, Any]) -> tuple[list[Finding], list[str]]:
    secrets: dict[str, SecretValues] = {}
    manifest = params["manifest"]
    if not params["no_values"]:
        secrets = known_values(os.environ, manifest=manifest)
    exclude = source_files(os.environ, manifest=manifest)
    findings = scan_paths(
        list(params["paths"]),
        secrets,
        git=params["history"],
        shapes=not params["no_shapes"],
        max_bytes=params["max_bytes"],
        exclude=exclude,
    )
    return findings, sorted(secrets)


def _as_json(findings: Sequence[Finding], searched: list[str]) -> dict[str, Any]:
    return {
        "searched_secrets": searched,
        "findings": [
            {
                "path": f.path,
                "line": f.line,
                "secret": f.secret,
                "shape": f.shape,
                "encoding": f.encoding,
                "live": f.live,
                "commit": f.commit,
            }
            for f in findings
        ],
    }


def _print(findings: Sequence[Finding], searched: list[str]) -> None:
    from rich.markup import escape

    from .output import console, table

    out = console()
    names = ", ".join(searched) if searched else "none configured: credential shapes only"
    out.print(f"Searched for the values of: {names}")
    if not findings:
        out.print("Nothing found.")
        return
    grid = table("Findings", ["file", "line", "secret or shape", "encoding", "live"])
    # Paths whole where they fit: the other columns wrap first.
    grid.columns[0].min_width = min(60, max(len(_shown(f.path)) for f in findings))
    for f in findings:
        live = ("yes" if f.live else "no (previous)") if f.secret else "-"
        what = f.secret if f.secret else f"shape: {f.shape}"
        # A file name is text, never markup ("[red]" in a name must show as written).
        grid.add_row(escape(_shown(f.path)), str(f.line), what, f.encoding, live)
    out.print(grid)
    live_count = sum(f.live for f in findings)
    out.print(
        f"{len(findings)} finding(s), {live_count} of a live value"
        + (": rotate those secrets now (yosai-secrets rotate)." if live_count else ".")
    )


def _shown(path: str) -> str:
    """A path under the working directory relative to it (short enough for a table)."""
    if os.path.isabs(path) and path.startswith(os.getcwd() + os.sep):
        return os.path.relpath(path)
    return path


def _rule_id(finding: Finding) -> str:
    return f"secret-value/{finding.secret}" if finding.secret else f"shape/{finding.shape}"


def _message(finding: Finding) -> str:
    if finding.secret:
        state = "its current value (live)" if finding.live else "a previous value"
        return f"{finding.secret} found ({finding.encoding}): {state}"
    return f"something shaped like a {finding.shape} found"


def sarif(findings: Sequence[Finding]) -> dict[str, Any]:
    """The findings as a SARIF 2.1.0 log (one run, a rule per secret name or shape)."""
    rule_ids = sorted({_rule_id(f) for f in findings})
    rules = [
        {
            "id": rule,
            "name": rule.replace("/", "-"),
            "shortDescription": {"text": _rule_text(rule)},
        }
        for rule in rule_ids
    ]
    results = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": _rule_id(f),
            "ruleIndex": rule_ids.index(_rule_id(f)),
            "level": "error" if f.live or f.secret else "warning",
            "message": {"text": _message(f)},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(f)},
                        "region": {"startLine": f.line},
                    }
                }
            ],
        }
        if f.commit:
            result["properties"] = {"commit": f.commit}
        results.append(result)
    driver = {"name": "yosai-secrets", "rules": rules}
    return {
        "version": "2.1.0",
        "$schema": SARIF_SCHEMA,
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }


def _rule_text(rule: str) -> str:
    kind, _, name = rule.partition("/")
    if kind == "secret-value":
        return f"A value of the configured secret {name}"
    return f"A credential shaped like a {name}"


def _uri(finding: Finding) -> str:
    """A relative path as a relative URI reference; an absolute one as a file: URI."""
    path = Path(finding.path.partition(":")[2] if finding.commit else finding.path)
    if path.is_absolute():
        return path.as_uri()
    return urllib.parse.quote(path.as_posix())
