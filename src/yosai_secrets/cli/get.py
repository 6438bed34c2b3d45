"""``yosai-secrets get``: read one secret, masked unless asked for explicitly."""

from __future__ import annotations

import json

import click

from ..manager import SecretManager
from ..secret import MASK


@click.command()
@click.argument("key")
@click.option(
    "--reveal",
    is_flag=True,
    help="Print the value itself on stdout (for scripts; never lands in a log).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: key, source, value if revealed.")
def get(key: str, reveal: bool, as_json: bool) -> None:
    """Read KEY (a name or a reference such as vault:secret/data/db#password).

    Without --reveal only the source and a mask are printed.
    """
    manager = SecretManager()
    value = manager.get(key)
    source = manager.describe(key)
    if as_json:
        click.echo(json.dumps({"key": key, "source": source, "value": value if reveal else MASK}))
    elif reveal:
        click.echo(value)
    else:
        click.echo(f"{key}: {MASK} (from {source}; use --reveal to print it)")
