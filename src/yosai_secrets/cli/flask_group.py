"""``flask secrets ...``: the ``yosai-secrets`` commands on the ``flask`` command line.

Flask finds this group through the ``flask.commands`` entry point that yosai-secrets declares, so
``YosaiSecrets.init_app`` registers nothing and imports no part of the command line. The group
holds the very same command objects as ``yosai-secrets`` (``check``, ``status``, ``rotate``, ...),
plus ``invalidate``, which tells a running server to forget its cached secrets. Only
``invalidate`` without ``--pid`` needs the app; it finds it as every ``flask`` command does
(``--app``, ``FLASK_APP``, else ``app.py`` or ``wsgi.py`` in the current directory).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup, ScriptInfo

from ..errors import ConfigurationError, YosaiSecretsError
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


# Not wrapped in an app context: signalling a server (--pid) must work even where the app cannot
# be built (an operator's shell without the secrets).
@secrets_group.command("invalidate", with_appcontext=False)
@click.argument("keys", nargs=-1)
@click.option("--pid", type=int, default=None, help="Send SIGHUP to this server process.")
@click.option(
    "--pidfile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Send SIGHUP to the process whose id this file holds (gunicorn's --pid).",
)
def invalidate(keys: tuple[str, ...], pid: int | None, pidfile: Path | None) -> None:
    """Make a running server forget its cached secrets (SIGHUP), or clear this app's caches.

    A server clears every cache on SIGHUP; under gunicorn, signal the master (it replaces its
    workers, which start with empty caches) or one worker. Without --pid/--pidfile the app is
    loaded here (--app, FLASK_APP, else app.py or wsgi.py) and the caches of this process are
    cleared, which does not reach a server already running.
    """
    if pidfile is not None:
        pid = _read_pidfile(pidfile)
    if pid is not None:
        if keys:
            raise click.UsageError("SIGHUP clears every cache; do not name keys with --pid")
        _send_sighup(pid, f" (from {pidfile})" if pidfile is not None else "")
        click.echo(f"sent SIGHUP to process {pid}: it forgets every cached secret")
        return
    from ..flask import current_extension

    if not current_app:
        ctx = click.get_current_context()
        ctx.with_resource(ctx.ensure_object(ScriptInfo).load_app().app_context())
    count = current_extension(current_app).clear_caches(keys or None)
    click.echo(f"forgot {count} cached path(s) in this process (app {current_app.name})")


def _read_pidfile(pidfile: Path) -> int:
    """The process id a pid file (gunicorn's ``--pid``) holds.

    Raises:
        ConfigurationError: the file is missing, unreadable, empty or holds no process id.
    """
    try:
        text = pidfile.read_text(encoding="utf-8", errors="replace").strip()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the pid file {pidfile}: {exc.strerror or type(exc).__name__}; is the "
            "server running, and is this the path it was given with --pid?"
        ) from None
    if not text.isdigit() or not text.isascii() or int(text) <= 0:
        what = "is empty" if not text else "does not hold a process id (a positive number)"
        raise ConfigurationError(
            f"the pid file {pidfile} {what}; give the file the server writes (gunicorn --pid), "
            "or the process id with --pid"
        )
    return int(text)


def _send_sighup(pid: int, origin: str) -> None:
    """Send SIGHUP to ``pid``, turning a refusal into one clear error."""
    if pid <= 0:
        # 0 and negative ids signal whole process groups: never what an operator meant.
        raise ConfigurationError(f"--pid {pid} is not a process id; give a positive number")
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise ConfigurationError(
            f"no process {pid} is running{origin}; is the server up (a stale pid file?)"
        ) from None
    except PermissionError:
        raise ConfigurationError(
            f"not allowed to signal process {pid}{origin}; run as the server's user"
        ) from None
    except OverflowError:
        raise ConfigurationError(f"{pid}{origin} is not a process id") from None
