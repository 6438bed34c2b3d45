"""``yosai-secrets check``: is every required secret there, and where does it come from?"""

from __future__ import annotations

import json
import os

import click

from ..environments import (
    ENVIRONMENTS,
    REQUIRED_SECRETS,
    current_environment,
    required_secrets,
)
from ..errors import ConfigurationError, SecretNotFoundError
from ..manager import SecretManager
from . import cli
from .output import console, table


def _check_rows(manager: SecretManager, env: str) -> list[dict[str, object]]:
    required = required_secrets(env)
    rows: list[dict[str, object]] = []
    for name in REQUIRED_SECRETS:
        row: dict[str, object] = {"name": name, "required": name in required}
        try:
            manager.get(name)
        except SecretNotFoundError:
            row.update(status="missing", source=None, error=None)
        except ConfigurationError as exc:
            row.update(status="error", source=None, error=str(exc))
        else:
            row.update(status="found", source=manager.describe(name), error=None)
        rows.append(row)
    return rows


@cli.command()
@click.option(
    "--env",
    "env_name",
    type=click.Choice(ENVIRONMENTS),
    default=None,
    help="Environment whose requirements apply (default: YOSAI_ENV, else production).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def check(env_name: str | None, as_json: bool) -> None:
    """Check that every required secret is present; print where each comes from.

    Exits 1 when a secret required in the environment is missing or unreadable.
    """
    env = env_name or current_environment(os.environ)
    manager = SecretManager()
    rows = _check_rows(manager, env)
    failed = [r["name"] for r in rows if r["required"] and r["status"] != "found"]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "environment": env,
                    "backend": manager.backend.name,
                    "ok": not failed,
                    "secrets": rows,
                },
                indent=2,
            )
        )
    else:
        out = console()
        grid = table(
            f"Secrets for {env} (backend: {manager.backend.name})",
            ["secret", "required", "status", "source"],
        )
        for r in rows:
            status = str(r["status"])
            style = {"found": "green", "missing": "red" if r["required"] else "yellow"}.get(
                status, "red"
            )
            grid.add_row(
                str(r["name"]),
                "yes" if r["required"] else "no",
                f"[{style}]{status}[/{style}]",
                str(r["source"] or r["error"] or "-"),
            )
        out.print(grid)
        if failed:
            out.print(f"[red]missing required secret(s): {', '.join(map(str, failed))}[/red]")
        else:
            out.print("[green]all required secrets are present[/green]")
    if failed:
        raise SystemExit(1)


@cli.command("dev-secrets")
@click.option(
    "--dir",
    "directory",
    default="secrets",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the secret files go.",
)
def dev_secrets(directory: str) -> None:
    """Generate missing development secrets (secrets/*.txt, mode 0600); never overwrites."""
    from ..devsecrets import ensure_dev_secrets

    created = ensure_dev_secrets(directory)
    for path in created:
        click.echo(f"generated {path} (mode 0600)")
    if not created:
        click.echo(f"development secrets in {directory}/ already exist; nothing generated")
