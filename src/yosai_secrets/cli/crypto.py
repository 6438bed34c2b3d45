"""``yosai-secrets encrypt`` / ``decrypt`` / ``generate-key``: Fernet for operators.

A value to encrypt is read from standard input (when piped) or from a hidden prompt, never from
the command line, where it would stay in the shell's history and be visible to ``ps``. The key
comes from ``FERNET_KEY`` (several comma-separated keys: the first encrypts, all decrypt).
"""

from __future__ import annotations

import os
import sys

import click

from ..crypto import ENC_PREFIX, FernetBox, generate_key
from ..errors import ConfigurationError

_NO_ARGV = (
    "values are never taken from the command line (they would stay in the shell history and "
    "be visible to other users in ps); pipe the value on standard input or type it at the prompt"
)


def _read_input(prompt: str, *, hide: bool, confirm: bool) -> str:
    """Read one value: all of piped stdin (one trailing newline dropped), else a prompt."""
    # sys.stdin, looked up now: click's test runner replaces it.
    if sys.stdin.isatty():
        value = click.prompt(
            prompt, hide_input=hide, confirmation_prompt=confirm, err=True, show_default=False
        )
        return str(value)
    text = sys.stdin.read()
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    return text


def _box() -> FernetBox:
    keys = os.environ.get("FERNET_KEY", "")
    if not keys.strip():
        raise ConfigurationError(
            "FERNET_KEY is not set; create a key with `yosai-secrets generate-key` and export it"
        )
    return FernetBox(keys)


def _refuse_argv(extra: tuple[str, ...]) -> None:
    if extra:
        # The extra argument is deliberately not echoed: it may be the secret itself.
        raise click.UsageError(_NO_ARGV)


@click.command("generate-key")
def generate_key_command() -> None:
    """Print a new random Fernet key (for FERNET_KEY).

    To rotate keys, put the new key first and keep the old one after it:
    FERNET_KEY=NEW,OLD. Values encrypted with OLD still decrypt; new ones use NEW.
    """
    click.echo(generate_key())
    if sys.stderr.isatty():
        click.echo("store it like any secret; never commit it", err=True)


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--prefix/--no-prefix",
    default=True,
    show_default=True,
    help="Write the token with the 'enc:' prefix (for YAML configuration).",
)
@click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="")
def encrypt(prefix: bool, extra: tuple[str, ...]) -> None:
    """Encrypt a value read from stdin (or a hidden prompt) with the first FERNET_KEY key.

    Prints the token, e.g. to paste into production.yaml or store in Vault:

        printf '%s' "$VALUE" | yosai-secrets encrypt
    """
    _refuse_argv(extra)
    box = _box()
    value = _read_input("Value to encrypt", hide=True, confirm=True)
    if not value:
        raise ConfigurationError("nothing to encrypt: the value read is empty")
    token = box.encrypt(value)
    click.echo(f"{ENC_PREFIX}{token}" if prefix else token)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="")
def decrypt(extra: tuple[str, ...]) -> None:
    """Decrypt a token (with or without 'enc:') read from stdin or a prompt; print the value.

    The value is printed on standard output and nothing else, so it can be piped on.
    """
    _refuse_argv(extra)
    box = _box()
    token = _read_input("Token to decrypt", hide=False, confirm=False).strip()
    if not token:
        raise ConfigurationError("nothing to decrypt: the token read is empty")
    click.echo(box.decrypt(token, name="the token read from stdin"))
