"""``yosai-secrets check``: is every required secret there, and where does it come from?

It loads the application's configuration exactly as the service does (``config/base.yaml`` and
``config/<env>.yaml``, references resolved, environment variables and the secret backend), then
prints one row per secret and every problem found. Values are never printed.
"""

from __future__ import annotations

import json
import os

import click
from rich.markup import escape
from rich.table import Table

from ..config import load_configuration
from ..config.validate import validate_secrets
from ..environments import ENVIRONMENTS, REQUIRED_SECRETS, current_environment, required_secrets
from ..placeholders import PLACEHOLDER_WORDING, is_placeholder
from .output import console, table


def _check(env: str) -> tuple[list[dict[str, object]], list[str]]:
    """Return the six rows and every problem (resolution and validation) for ``env``."""
    state = load_configuration(env=env, validate=False)
    required = required_secrets(env)
    rows: list[dict[str, object]] = []
    for name in REQUIRED_SECRETS:
        found = state.secrets.get(name)
        status = found.status if found is not None else "missing"
        source = found.source if found is not None and status == "found" else None
        note = None
        if found is not None and status == "found" and is_placeholder(found.value):
            # The example's replace-me-... value: present, but not set.
            status, note = "missing", PLACEHOLDER_WORDING
        rows.append(
            {
                "name": name,
                "required": name in required,
                "status": status,
                "source": source,
                "error": found.detail if found is not None and status == "error" else None,
                "note": note,
            }
        )
    config_file = state.files[-1].name if state.files else None
    problems = state.problems + validate_secrets(env, state.secrets, config_file)
    return rows, problems


@click.command()
@click.option(
    "--env",
    "env_name",
    type=click.Choice(ENVIRONMENTS),
    default=None,
    help="Environment whose configuration and requirements apply (default: YOSAI_ENV, else "
    "production).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def check(env_name: str | None, as_json: bool) -> None:
    """Check that every required secret is present; print where each comes from.

    Uses the configuration in YOSAI_CONFIG_DIR (default ./config). A secret that still holds the
    example's placeholder (replace-me-...) is reported as not set. Exits 1 when a secret required
    in the environment is missing or unreadable, or the configuration has another problem (a
    reference that does not resolve, a weak SECRET_KEY in production).
    """
    env = env_name or current_environment(os.environ)
    backend = os.environ.get("SECRET_BACKEND", "").strip() or "env"
    rows, problems = _check(env)
    missing = _required_in(rows, "missing")
    unreadable = _required_in(rows, "error")
    ok = not missing and not unreadable and not problems
    if as_json:
        document = {
            "environment": env,
            "backend": backend,
            "ok": ok,
            "secrets": rows,
            "problems": problems,
        }
        click.echo(json.dumps(document, indent=2))
    else:
        out = console()
        out.print(_table(env, backend, rows))
        for problem in problems:
            out.print(f"[red]- {escape(problem)}[/red]")
        if missing:
            out.print(f"[red]missing required secret(s): {', '.join(missing)}[/red]")
        if unreadable:
            out.print(f"[red]required secret(s) in error: {', '.join(unreadable)}[/red]")
        if ok:
            out.print("[green]all required secrets are present[/green]")
    if not ok:
        raise SystemExit(1)


def _required_in(rows: list[dict[str, object]], status: str) -> list[str]:
    """The names of the required secrets whose status is ``status``."""
    return [str(r["name"]) for r in rows if r["required"] and r["status"] == status]


def _table(env: str, backend: str, rows: list[dict[str, object]]) -> Table:
    grid = table(
        f"Secrets for {env} (backend: {backend})",
        ["secret", "required", "status", "source"],
    )
    for r in rows:
        status = str(r["status"])
        style = {"found": "green", "missing": "red" if r["required"] else "yellow"}.get(
            status, "red"
        )
        # The cause (and its hint) is printed once, below the table, for every key it stops.
        shown = "cannot be read: see the problem below" if status == "error" else r["source"]
        if r["note"]:
            shown = f"{shown}: {r['note']}"
        grid.add_row(
            str(r["name"]),
            "yes" if r["required"] else "no",
            f"[{style}]{status}[/{style}]",
            escape(str(shown or "-")),
        )
    return grid


@click.command("dev-secrets")
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
