"""The ``yosai-secrets`` command: a thin click layer over the library.

Each sub-command lives in a module of this package and calls the library, nothing more; the group
below adds each one explicitly (a command module never attaches itself to it). Errors of ours are
printed as one clear line (never a traceback, never a value) with exit status 2; a check that finds
a problem exits with 1.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from ..errors import YosaiSecretsError
from ..logformat import configure as configure_logging
from . import audit, check, crypto, get, incident, rotate, scan, serve, status

__all__ = ["cli", "main"]


class _Group(click.Group):
    """Translate our errors into one line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except YosaiSecretsError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="yosai-secrets")
@click.option("-v", "--verbose", count=True, help="Log more (repeat for debug).")
def cli(verbose: int) -> None:
    """Secrets and secure configuration for the Yōsai Intel Dashboard."""
    level = logging.WARNING - 10 * min(verbose, 2)
    # Text or JSON lines (YOSAI_LOG_FORMAT), redacted either way; the dev server logs through it.
    configure_logging(level)


# Explicit, so that a reader sees every command here; the package attributes stay the modules.
cli.add_command(audit.audit)
cli.add_command(check.check)
cli.add_command(check.dev_secrets)
cli.add_command(crypto.generate_key_command)
cli.add_command(crypto.encrypt)
cli.add_command(crypto.decrypt)
cli.add_command(get.get)
cli.add_command(incident.incident)
cli.add_command(rotate.rotate)
cli.add_command(scan.scan)
cli.add_command(serve.serve)
cli.add_command(status.status)


def main(argv: list[str] | None = None) -> None:
    """Run the command line (the ``yosai-secrets`` entry point)."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="yosai-secrets")
