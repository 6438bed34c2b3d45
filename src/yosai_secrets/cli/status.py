"""``yosai-secrets status``: when was each secret last rotated, against the policy?"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click

from ..errors import ConfigurationError
from ..rotation import DEFAULT_MANIFEST
from ..rotation.journal import Journal, journal_path
from ..rotation.manifest import SecretManifest
from ..rotation.plan import default_keys
from ..rotation.policy import Verdict, judge, max_age_days, parse_time
from ..rotation.stores import open_store
from .output import console, table

__all__ = ["status"]


def _verdicts(manifest_path: Path, keys: list[str] | None, max_days: int) -> list[Verdict]:
    now = datetime.now(UTC)
    verdicts: list[Verdict] = []
    chosen = keys
    if manifest_path.exists():
        manifest = SecretManifest(manifest_path)
        chosen = chosen or default_keys(manifest)
        for key in chosen:
            stamp = manifest.annotation(key) if manifest.has(key) else None
            verdicts.append(
                judge(key, "manifest", parse_time(stamp) if stamp else None, now, max_days)
            )
    store = open_store(os.environ)
    if store.name != "env":
        for key in chosen or ["SECRET_KEY", "DB_PASSWORD"]:
            verdicts.append(judge(key, store.name, store.rotated_at(key), now, max_days))
    if not verdicts:
        raise ConfigurationError(
            f"nothing to report: {manifest_path} does not exist and SECRET_BACKEND names no store"
        )
    return verdicts


@click.command()
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_MANIFEST,
    show_default=True,
    help="The Kubernetes Secret manifest whose annotations record rotation times.",
)
@click.option("--keys", help="Keys to report, comma-separated (default: SECRET_KEY and *PASSWORD).")
@click.option(
    "--max-age-days",
    "max_days",
    type=int,
    default=None,
    help="The policy's maximum age (default: ROTATION_MAX_AGE_DAYS, else 90).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def status(manifest: Path, keys: str | None, max_days: int | None, as_json: bool) -> None:
    """List every secret's last rotation against the policy; exit 1 when one is overdue.

    Sources: the manifest's rotation annotations, and with SECRET_BACKEND=vault the KV v2 version
    time, with aws the date of the AWSCURRENT version. A secret never rotated counts as overdue.
    """
    days = max_age_days(os.environ, max_days)
    wanted = [k.strip() for k in keys.split(",") if k.strip()] if keys else None
    verdicts = _verdicts(manifest, wanted, days)
    journal = Journal.load(journal_path(manifest))
    failing = [v for v in verdicts if v.failing]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "max_age_days": days,
                    "ok": not failing,
                    "open_rotation": journal.phase if journal else None,
                    "secrets": [
                        {
                            "key": v.key,
                            "source": v.source,
                            "rotated_at": v.rotated_at.isoformat() if v.rotated_at else None,
                            "age_days": v.age_days,
                            "state": v.state,
                        }
                        for v in verdicts
                    ],
                },
                indent=2,
            )
        )
    else:
        out = console()
        grid = table(
            f"Rotation status (policy: at most {days} days)",
            ["secret", "source", "last rotated", "age (days)", "state"],
        )
        styles = {"ok": "green", "due-soon": "yellow"}
        for v in verdicts:
            style = styles.get(v.state, "red")
            grid.add_row(
                v.key,
                v.source,
                v.rotated_at.strftime("%Y-%m-%d %H:%M UTC") if v.rotated_at else "never",
                "-" if v.age_days is None else f"{v.age_days:g}",
                f"[{style}]{v.state}[/{style}]",
            )
        out.print(grid)
        if journal is not None:
            out.print(
                f"[yellow]a rotation is open (phase {journal.phase}); "
                "see `yosai-secrets rotate`[/yellow]"
            )
        if failing:
            names = ", ".join(sorted({v.key for v in failing}))
            out.print(f"[red]overdue or never rotated: {names}; run `yosai-secrets rotate`[/red]")
        else:
            out.print("[green]every secret is within the rotation policy[/green]")
    if failing:
        raise SystemExit(1)
