"""``flask secrets ...``: the ``yosai-secrets`` commands, registered on a Flask app's CLI.

The group holds the very same command objects as ``yosai-secrets`` (``check``, ``status``,
``rotate``, ... whichever are installed), plus ``invalidate``, which tells a running server to
forget its cached secrets.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import click
from flask.cli import AppGroup

from ..errors import YosaiSecretsError
from ..secret import install_redaction
from . import cli

__all__ = ["secrets_group"]


class _SecretsGroup(AppGroup):
    """Translate our errors into one line on stderr and exit status 2, as ``yosai-secrets``."""

    def invoke(self, ctx: click.Context) -> Any:
        install_redaction()
        try:
            return super().invoke(ctx)
        except YosaiSecretsError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(2)


secrets_group = _SecretsGroup(
    "secrets", help="Secrets and secure configuration (the yosai-secrets commands)."
)

for _name, _command in sorted(cli.commands.items()):
    secrets_group.add_command(_command, _name)


@secrets_group.command("invalidate")
@click.argument("keys", nargs=-1)
@click.option("--pid", type=int, default=None, help="Send SIGHUP to this server process.")
@click.option(
    "--pidfile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Send SIGHUP to the process whose id this file holds (gunicorn's --pid).",
)
def invalidate(keys: tuple[str, ...], pid: int | None, pidfile: Path | None) -> None:
    """Make a running server forget its cached secrets (SIGHUP), or clear this process's cache.

    A server clears every cache on SIGHUP; under gunicorn, signal the master (it replaces its
    workers, which start with empty caches) or one worker. Without --pid/--pidfile, only this
    command's own process cache is cleared, which helps only within `flask shell` sessions.
    """
    if pidfile is not None:
        pid = int(pidfile.read_text(encoding="utf-8").strip())
    if pid is not None:
        if keys:
            raise click.UsageError("SIGHUP clears every cache; do not name keys with --pid")
        os.kill(pid, signal.SIGHUP)
        click.echo(f"sent SIGHUP to process {pid}: it forgets every cached secret")
        return
    from ..manager import invalidate_secret

    count = sum(invalidate_secret(k) for k in keys) if keys else invalidate_secret()
    click.echo(f"forgot {count} cached path(s) in this process")
