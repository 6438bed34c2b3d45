"""``yosai-secrets status``: when was each secret last rotated, against the policy?

The keys, ages, days until due and verdicts are those of the posture page: both choose keys with
:func:`yosai_secrets.rotation_age.aged_keys` and call
:func:`yosai_secrets.rotation_age.rotation_verdicts` with the same sources (the store's per-key
stamps, the file a secret is read from), this command adding the manifest's rotation annotations
as a last resort.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from ..environments import REQUIRED_SECRETS
from ..errors import SecretNotFoundError
from ..manager import SecretManager
from ..placeholders import is_placeholder
from ..rotation import DEFAULT_MANIFEST
from ..rotation.journal import Journal, journal_path
from ..rotation.manifest import SecretManifest
from ..rotation_age import (
    ISSUED_KEYS,
    RotationRecords,
    Verdict,
    aged_keys,
    max_age_days,
    rotation_verdicts,
)
from .output import console, table

__all__ = ["status"]


def _default_keys(manifest_path: Path, manager: SecretManager) -> list[str]:
    """The keys the policy judges (as the page): the manifest's, else those of the six secrets.

    An issued credential (``AUTH0_CLIENT_SECRET``) is judged when it is set, and not to the
    example's placeholder: a service without Auth0 has no such secret to age, and the page shows
    it as missing.
    """
    if manifest_path.exists():
        manifest = SecretManifest(manifest_path)
        names = manifest.keys()
        found = aged_keys(
            k for k in names if k not in ISSUED_KEYS or not is_placeholder(manifest.get(k))
        )
        if found:
            return found
    held = manager.get_many([k for k in REQUIRED_SECRETS if k in ISSUED_KEYS])
    # Unreadable is not unset: a backend that fails must not hide a secret from the report.
    unset = {k for k, v in held.items() if isinstance(v, SecretNotFoundError) or is_placeholder(v)}
    return aged_keys([k for k in REQUIRED_SECRETS if k not in unset])


def _verdicts(manifest_path: Path, keys: list[str] | None, max_days: int) -> list[Verdict]:
    records = RotationRecords(os.environ, manifest=manifest_path)
    manager = SecretManager(environ=os.environ)
    return rotation_verdicts(
        keys or _default_keys(manifest_path, manager),
        manager,
        rotation_info=records,
        max_days=max_days,
    )


@click.command()
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_MANIFEST,
    show_default=True,
    help="The Kubernetes Secret manifest whose annotations record rotation times (if it exists).",
)
@click.option(
    "--keys",
    help="Keys to report, comma-separated (default: SECRET_KEY, *PASSWORD, AUTH0_CLIENT_SECRET).",
)
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

    The last rotation comes from the key's own stamp in the store SECRET_BACKEND names (vault:
    the custom metadata rotated_at_<KEY>; aws: the secret's rotated-at tag), else from the
    modification time of the file the secret is read from (Docker secret, NAME_FILE, development
    file), else from the manifest's rotation.yosai.io/<KEY> annotation. A secret with no record
    counts as overdue. AUTH0_CLIENT_SECRET is judged too (rotate it in Auth0, then record the
    time, e.g. in the annotation).
    """
    days = max_age_days(os.environ, max_days)
    wanted = [k.strip() for k in keys.split(",") if k.strip()] if keys else None
    verdicts = _verdicts(manifest, wanted, days)
    journal = Journal.load(journal_path(manifest))
    if as_json:
        click.echo(json.dumps(_document(verdicts, days, journal), indent=2))
    else:
        _print(verdicts, days, journal)
    if any(v.failing for v in verdicts):
        raise SystemExit(1)


def _document(verdicts: list[Verdict], days: int, journal: Journal | None) -> dict[str, Any]:
    """The ``--json`` document."""
    return {
        "max_age_days": days,
        "ok": not any(v.failing for v in verdicts),
        "open_rotation": journal.phase if journal else None,
        "secrets": [
            {
                "key": v.key,
                "source": v.source,
                "rotated_at": v.rotated_at.isoformat() if v.rotated_at else None,
                "age_days": v.age_days,
                "days_until_due": v.days_until_due,
                "state": v.state,
            }
            for v in verdicts
        ],
    }


def _print(verdicts: list[Verdict], days: int, journal: Journal | None) -> None:
    """The table, then a line on an open rotation, then the conclusion."""
    out = console()
    out.print(_table(verdicts, days))
    if journal is not None:
        out.print(
            f"[yellow]a rotation is open (phase {journal.phase}); "
            "see `yosai-secrets rotate`[/yellow]"
        )
    failing = sorted({v.key for v in verdicts if v.failing})
    if failing:
        names = ", ".join(failing)
        out.print(f"[red]overdue or never rotated: {names}; run `yosai-secrets rotate`[/red]")
    else:
        out.print("[green]every secret is within the rotation policy[/green]")


def _table(verdicts: list[Verdict], days: int) -> Table:
    grid = table(
        f"Rotation status (policy: at most {days} days)",
        ["secret", "source", "last rotated", "age (days)", "due in (days)", "state"],
    )
    styles = {"ok": "green", "due-soon": "yellow"}
    for v in verdicts:
        style = styles.get(v.state, "red")
        grid.add_row(
            v.key,
            v.source or "-",
            v.rotated_at.strftime("%Y-%m-%d %H:%M UTC") if v.rotated_at else "never",
            "-" if v.age_days is None else f"{v.age_days:g}",
            "-" if v.days_until_due is None else str(v.days_until_due),
            f"[{style}]{v.state}[/{style}]",
        )
    return grid
