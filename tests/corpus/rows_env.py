"""Environment variables: empty, blank, placeholders and weak keys in production, bad settings.

Production rows load ``SecureConfigManager`` with no configuration file and every secret from the
environment, one of them spoiled; the canary is inside the spoiled value wherever it can be (a
placeholder followed by the canary is still a placeholder). The other rows read a key with
``get`` under a malformed setting (``SECRET_BACKEND``, ``SECRET_READ_TIMEOUT``...).
"""

from __future__ import annotations

from collections.abc import Callable

from tests.corpus import Ctx, Row
from tests.corpus.helpers import get, manager
from yosai_secrets.config import SecureConfigManager
from yosai_secrets.errors import (
    ConfigurationError,
    SecretNotFoundError,
    UnknownBackendError,
    ValidationError,
)

_GOOD = {
    "SECRET_KEY": "corpus-secret-key-7Hq2vLx9Rk4mWp3zNt8sYb6c",  # pragma: allowlist secret
    "DB_PASSWORD": "db-password-corpus-123",
    "AUTH0_CLIENT_ID": "client-id",
    "AUTH0_CLIENT_SECRET": "client-secret-corpus-123",
    "AUTH0_DOMAIN": "tenant.eu.auth0.com",
    "AUTH0_AUDIENCE": "https://api.example.com/",
}


def _production(**spoiled: str | Callable[[Ctx], str]) -> Callable[[Ctx], object]:
    """Load production with ``spoiled`` variables over good ones (CANARY replaced)."""

    def act(ctx: Ctx) -> object:
        ctx.environ.update(_GOOD)
        for name, value in spoiled.items():
            text = value(ctx) if callable(value) else value.replace("CANARY", ctx.canary)
            ctx.environ[name] = text
            ctx.name(name.removesuffix("_FALLBACKS"))
            if len(text.strip()) >= 4:
                ctx.plant(text.strip())
        return SecureConfigManager(ctx.tmp / "no-config", env="production", environ=ctx.environ)

    return act


def _prod_row(id: str, xfail: str | None = None, **spoiled: str | Callable[[Ctx], str]) -> Row:
    return Row(id=f"env-{id}", act=_production(**spoiled), expect=ValidationError, xfail=xfail)


def _setting(name: str, value: str, key: str = "SECRET_KEY") -> Callable[[Ctx], str]:
    def act(ctx: Ctx) -> str:
        ctx.environ.update({key: ctx.canary, name: value})
        ctx.name(name)
        return get(ctx, key)

    return act


def _blank_variable(value: str) -> Callable[[Ctx], str]:
    def act(ctx: Ctx) -> str:
        ctx.environ.update(DB_PASSWORD=value, SECRETS_DIR=str(ctx.tmp / "none"))
        ctx.name("DB_PASSWORD")
        return get(ctx, "DB_PASSWORD", "env")

    return act


def _deep_json(canary: str) -> str:
    return f'{{"p": "{canary}", "x": ' + "[" * 50_000 + "]" * 50_000 + "}"


ROWS = [
    # -- production: empty, blank, placeholders ---------------------------------------------------
    _prod_row("empty-secret-key", SECRET_KEY=""),
    _prod_row("blank-secret-key", SECRET_KEY="   \t "),
    _prod_row("blank-db-password", DB_PASSWORD="  \t  "),
    _prod_row("newline-client-secret", AUTH0_CLIENT_SECRET="\n"),
    _prod_row("changeme-secret-key", SECRET_KEY="changeme"),
    _prod_row("changeme-repeated", SECRET_KEY="changeme" * 6),
    _prod_row("changeme-with-canary", SECRET_KEY="changeme-CANARY-changeme"),
    _prod_row("replace-me-secret-key", SECRET_KEY="replace-me-secret-key"),
    _prod_row("replace-me-db-password", DB_PASSWORD="replace-me-db-password-CANARY"),
    _prod_row("replace-me-client-secret", AUTH0_CLIENT_SECRET="REPLACE-ME-CANARY"),
    _prod_row("short-secret-key", SECRET_KEY=lambda ctx: ctx.canary[-12:]),
    _prod_row("low-entropy-repeated", SECRET_KEY="a" * 40),
    _prod_row("low-entropy-pairs", SECRET_KEY="ab" * 20),
    _prod_row("low-entropy-digits", SECRET_KEY="0123" * 10),
    _prod_row("fallback-changeme", SECRET_KEY_FALLBACKS='["changeme"]'),
    _prod_row("fallback-placeholder", SECRET_KEY_FALLBACKS='["replace-me-secret-key"]'),
    _prod_row("fallback-short", SECRET_KEY_FALLBACKS=lambda ctx: f'["{ctx.canary[-10:]}"]'),
    # -- get(): blank values and malformed settings -----------------------------------------------
    Row(
        id="env-get-empty-variable",
        act=_blank_variable(""),
        expect=SecretNotFoundError,
        why="an empty variable counts as unset: the places looked at are listed",
    ),
    Row(id="env-get-blank-variable", act=_blank_variable("   "), expect=ConfigurationError),
    Row(id="env-get-newline-variable", act=_blank_variable("\n\n"), expect=ConfigurationError),
    Row(
        id="env-deeply-nested-json-field",
        act=lambda ctx: (
            ctx.environ.update(
                DB_CREDENTIALS='{"p": "CANARY", "x": ' + "[" * 50_000 + "]" * 50_000 + "}"
            ),
            get(ctx, "env:DB_CREDENTIALS#password", "env"),
        ),
        expect=ConfigurationError,
        named=("DB_CREDENTIALS", "password"),
    ),
    Row(
        id="env-plain-value-with-field",
        act=lambda ctx: (
            ctx.environ.update(DB_PASSWORD=ctx.canary),
            get(ctx, "env:DB_PASSWORD#password", "env"),
        ),
        expect=ConfigurationError,
        named=("DB_PASSWORD", "password"),
    ),
    Row(
        id="env-unknown-backend",
        act=lambda ctx: manager(ctx, SECRET_BACKEND="vualt").get("SECRET_KEY"),
        expect=UnknownBackendError,
        named=("vualt",),
    ),
    Row(
        id="env-unknown-environment",
        act=lambda ctx: (
            ctx.environ.update(YOSAI_ENV="prod"),
            SecureConfigManager(ctx.tmp / "none", environ=ctx.environ),
        ),
        expect=ConfigurationError,
        named=("YOSAI_ENV",),
    ),
    Row(
        id="env-cache-ttl-garbage",
        act=_setting("SECRET_CACHE_TTL", "five minutes"),
        expect=ConfigurationError,
    ),
    Row(
        id="env-cache-ttl-negative",
        act=_setting("SECRET_CACHE_TTL", "-1"),
        expect=ConfigurationError,
    ),
    Row(
        id="env-read-timeout-zero",
        act=_setting("SECRET_READ_TIMEOUT", "0"),
        expect=ConfigurationError,
    ),
    Row(
        id="env-read-timeout-nan",
        act=_setting("SECRET_READ_TIMEOUT", "nan"),
        expect=ConfigurationError,
    ),
    Row(
        id="env-vault-timeout-garbage",
        act=_setting("VAULT_TIMEOUT", "soon", key="vault:secret/data/x#y"),
        expect=ConfigurationError,
        setup=lambda ctx: ctx.environ.update(VAULT_ADDR="http://127.0.0.1:1", VAULT_TOKEN="t"),
    ),
    Row(
        id="env-aws-max-attempts-zero",
        act=_setting("AWS_MAX_ATTEMPTS", "0", key="aws-secrets:x"),
        expect=ConfigurationError,
        setup=lambda ctx: ctx.environ.update(AWS_REGION="us-east-1"),
    ),
    Row(
        id="env-vault-addr-not-a-url",
        act=_setting("VAULT_ADDR", "vault.example.com:8200", key="vault:secret/data/x#y"),
        expect=ConfigurationError,
        setup=lambda ctx: ctx.environ.update(VAULT_TOKEN="t"),
    ),
]
