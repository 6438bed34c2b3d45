"""References: traversal in every spelling, unsafe characters, unknown schemes, sheer length.

The Vault rows run against the session's real OpenBao. Each first writes the canary at a
``target`` beside the row's own path; a reference whose dot segments the server resolved would read
it back, and the act would then return instead of raising. So "refused" here also means "the
server never got to resolve it".
"""

from __future__ import annotations

from collections.abc import Callable

from tests.corpus import Ctx, Row
from tests.corpus.helpers import get, vault_environ, vault_put
from yosai_secrets.errors import InvalidReferenceError, SecretFileError
from yosai_secrets.references import parse_reference


def _base(ctx: Ctx) -> str:
    return f"secret/data/corpus-{ctx.canary[-8:]}"


def _plant(ctx: Ctx) -> None:
    """The canary at <base>/target, and the real token in the row's environment."""
    server = ctx.server("openbao")
    vault_put(server, f"corpus-{ctx.canary[-8:]}/target", {"password": ctx.canary})
    vault_environ(ctx, server)


def _vault(tail: str, *, scheme: str = "vault:") -> Callable[[Ctx], object]:
    """An act reading ``<scheme><base>/<tail>`` from the real OpenBao."""

    def act(ctx: Ctx) -> object:
        ctx.name(f"corpus-{ctx.canary[-8:]}")
        return get(ctx, f"{scheme}{_base(ctx)}/{tail}")

    return act


def _escape(tail: str, scheme: str = "vault:") -> Callable[[Ctx], object]:
    """An act reading a path that climbs out of ``secret/`` to another part of the API."""

    def act(ctx: Ctx) -> object:
        return get(ctx, f"{scheme}secret/data/{tail}")

    return act


def _vault_row(id: str, tail: str, **kwargs: object) -> Row:
    return Row(
        id=f"refs-{id}",
        act=_vault(tail),
        expect=InvalidReferenceError,
        setup=_plant,
        needs=("openbao",),
        **kwargs,  # type: ignore[arg-type]
    )


def _parse(text: str) -> Callable[[Ctx], object]:
    return lambda ctx: parse_reference(text)


ROWS = [
    # -- dot segments, plain and percent-encoded in every case mix --------------------------------
    _vault_row("dotdot-plain", "sub/../target#password"),
    _vault_row("dotdot-lower", "sub/%2e%2e/target#password"),
    _vault_row("dotdot-upper", "sub/%2E%2E/target#password"),
    _vault_row("dotdot-mixed-1", "sub/%2e%2E/target#password"),
    _vault_row("dotdot-mixed-2", "sub/%2E%2e/target#password"),
    _vault_row("dotdot-half-1", "sub/.%2e/target#password"),
    _vault_row("dotdot-half-2", "sub/%2E./target#password"),
    _vault_row("dot-encoded", "%2e/target#password"),
    _vault_row("dot-plain", "./target#password"),
    _vault_row("dotdot-double-encoded", "sub/%252e%252e/target#password"),
    _vault_row("dotdot-triple-encoded", "sub/%25252E%25252e/target#password"),
    _vault_row("empty-segment", "sub//target#password"),
    _vault_row("encoded-slash", "sub%2f..%2ftarget#password"),
    _vault_row("encoded-slash-upper", "sub%2F%2E%2E%2Ftarget#password"),
    _vault_row("backslash", "sub\\..\\target#password"),
    _vault_row("fullwidth-dots", "sub/\uff0e\uff0e/target#password"),
    _vault_row("one-dot-leaders", "sub/\u2024\u2024/target#password"),
    _vault_row("nul-byte", "sub\x00/target#password"),
    _vault_row("nul-encoded", "sub%00/target#password"),
    _vault_row("crlf-injection", "target\r\nX-Vault-Token: x#password"),
    _vault_row("tab-control", "tar\tget#password"),
    _vault_row("rtl-override", "\u202etegrat#password"),
    _vault_row("zero-width-space", "tar\u200bget#password"),
    _vault_row("query-version", "target?version=1#password"),
    _vault_row("query-list-encoded", "target%3Flist=true#password"),
    _vault_row("very-long", "a" * 100_000 + "#password"),
    # -- climbing out of the mount to the rest of the API -----------------------------------------
    Row(
        id="refs-escape-token-lookup",
        act=_escape("%2e%2e/%2e%2e/auth/token/lookup-self#id"),
        expect=InvalidReferenceError,
        named=("secret/data/",),
        setup=_plant,
        needs=("openbao",),
        why="issue 12 class 1: returned the Vault token's id",
    ),
    Row(
        id="refs-escape-mount-table",
        act=_escape("%2E%2E/%2E%2E/%2E%2E/sys/mounts#secret/"),
        expect=InvalidReferenceError,
        named=("secret/data/",),
        setup=_plant,
        needs=("openbao",),
    ),
    Row(
        id="refs-escape-bare-key-default-backend",
        act=_escape("%2e%2e/%2e%2e/auth/token/lookup-self#id", scheme=""),
        expect=InvalidReferenceError,
        named=("secret/data/",),
        setup=_plant,
        needs=("openbao",),
        why="a key without a scheme under SECRET_BACKEND=vault",
    ),
    Row(
        id="refs-escape-secret-scheme",
        act=_escape("%2e%2e/%2e%2e/sys/mounts#secret/", scheme="secret:"),
        expect=InvalidReferenceError,
        named=("secret/data/",),
        setup=_plant,
        needs=("openbao",),
    ),
    Row(
        id="refs-escape-v1-prefix",
        act=_escape("../../sys/seal-status#sealed", scheme="vault:v1/"),
        expect=InvalidReferenceError,
        named=("secret/data/",),
        setup=_plant,
        needs=("openbao",),
    ),
    # -- parsing alone (what configuration files go through) --------------------------------------
    Row(
        id="refs-parse-encoded-dotdot",
        act=_parse("vault:secret/data/%2E%2e/%2e%2E/sys/mounts#secret/"),
        expect=InvalidReferenceError,
        named=("sys/mounts",),
    ),
    Row(
        id="refs-parse-double-encoded",
        act=_parse("vault:secret/data/app/%252E%252E/x#password"),
        expect=InvalidReferenceError,
        named=("secret/data/app",),
    ),
    Row(
        id="refs-parse-nul",
        act=_parse("vault:secret/data/app\x00#password"),
        expect=InvalidReferenceError,
        named=("secret/data/app",),
    ),
    Row(
        id="refs-parse-empty-name",
        act=_parse("vault:#password"),
        expect=InvalidReferenceError,
        named=("vault:#password",),
    ),
    Row(
        id="refs-parse-empty-field",
        act=_parse("aws-secrets:prod/db#"),
        expect=InvalidReferenceError,
        named=("aws-secrets:prod/db#",),
    ),
    Row(
        id="refs-parse-file-dotdot",
        act=_parse("file:/run/secrets/../../etc/shadow"),
        expect=InvalidReferenceError,
        named=("/run/secrets/",),
    ),
    Row(
        id="refs-parse-very-long",
        act=_parse("aws-secrets:" + "p" * 50_000),
        expect=InvalidReferenceError,
        named=("aws-secrets:ppp",),
    ),
    # -- unknown schemes and names no backend can hold --------------------------------------------
    Row(
        id="refs-unknown-scheme-typo",
        act=lambda ctx: get(ctx, "vualt:secret/data/db#password", "env"),
        expect=InvalidReferenceError,
        named=("vualt",),
    ),
    Row(
        id="refs-unknown-scheme-https",
        act=lambda ctx: get(ctx, "https://vault.example.com/v1/secret/data/db", "env"),
        expect=InvalidReferenceError,
        named=("https",),
    ),
    Row(
        id="refs-env-traversal",
        act=lambda ctx: get(ctx, "env:../../etc/passwd", "env"),
        expect=SecretFileError,
        named=("../../etc/passwd",),
    ),
    Row(
        id="refs-env-newline",
        act=lambda ctx: get(ctx, "env:DB_PASSWORD\nX-Injected: 1", "env"),
        expect=InvalidReferenceError,
        named=("DB_PASSWORD",),
    ),
    Row(
        id="refs-env-very-long",
        act=lambda ctx: get(ctx, "K" * 100_000, "env"),
        expect=InvalidReferenceError,
        named=("KKKK",),
    ),
    Row(
        id="refs-secret-scheme-traversal-env",
        act=lambda ctx: get(ctx, "secret:../../etc/shadow", "env"),
        expect=SecretFileError,
        named=("../../etc/shadow",),
    ),
    Row(
        id="refs-aws-nul",
        act=lambda ctx: get(ctx, "aws-secrets:prod/db\x00#password", "env", AWS_REGION="x"),
        expect=InvalidReferenceError,
        named=("prod/db",),
    ),
    Row(
        id="refs-aws-too-long",
        act=lambda ctx: get(ctx, "aws-secrets:" + "n" * 600, "env", AWS_REGION="x"),
        expect=InvalidReferenceError,
        named=("nnnn",),
    ),
]
