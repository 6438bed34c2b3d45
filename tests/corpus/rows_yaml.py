"""YAML configuration files: Python tags, alias bombs, deep nesting, duplicates, coercions.

Each row writes ``production.yaml`` (the canary on the offending line where there is one) and
loads it with ``SecureConfigManager`` in production, every other secret set in the environment,
so that the only problem is the one the row plants. YAML 1.1 (PyYAML) reads ``no``/``on`` as
booleans, ``0777`` as an octal int, ``1e10`` as a float and ``2001-12-14`` as a date: a secret
written that way is not the text its author typed, and must be refused, not used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tests.corpus import Ctx, Row
from yosai_secrets.config import SecureConfigManager
from yosai_secrets.errors import ConfigurationError, ValidationError

_FILE = "production.yaml"
_OTHERS = {
    "SECRET_KEY": "corpus-secret-key-7Hq2vLx9Rk4mWp3zNt8sYb6c",  # pragma: allowlist secret
    "DB_PASSWORD": "db-password-corpus-123",
    "AUTH0_CLIENT_ID": "client-id",
    "AUTH0_CLIENT_SECRET": "client-secret-corpus-123",
    "AUTH0_DOMAIN": "tenant.eu.auth0.com",
    "AUTH0_AUDIENCE": "https://api.example.com/",
}


def _written(
    text: str | Callable[[Ctx], str | bytes], *, leave: tuple[str, ...] = ()
) -> Callable[[Ctx], None]:
    """Write the file (CANARY replaced); every secret but ``leave`` comes from the environment."""

    def setup(ctx: Ctx) -> None:
        body = text(ctx) if callable(text) else text.replace("CANARY", ctx.canary)
        path = ctx.tmp / _FILE
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8")
        ctx.environ.update({k: v for k, v in _OTHERS.items() if k not in leave})

    return setup


def _load(ctx: Ctx) -> object:
    ctx.name(_FILE)
    return SecureConfigManager(ctx.tmp / _FILE, env="production", environ=ctx.environ)


def _row(
    id: str,
    text: str | Callable[[Ctx], str | bytes],
    expect: type[BaseException] = ConfigurationError,
    *,
    leave: tuple[str, ...] = (),
    named: tuple[str, ...] = (),
    xfail: str | None = None,
    deadline: float = 5.0,
) -> Row:
    return Row(
        id=f"yaml-{id}",
        act=_load,
        expect=expect,
        named=named,
        setup=_written(text, leave=leave),
        xfail=xfail,
        deadline_seconds=deadline,
    )


def _bomb(ctx: Ctx) -> str:
    lines = ['a: &a ["CANARY", "CANARY", "CANARY", "CANARY", "CANARY", "CANARY", "CANARY"]']
    for level in "bcdefghij":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return ("\n".join(lines) + "\n").replace("CANARY", ctx.canary)


def _merge_bomb(ctx: Ctx) -> str:
    lines = [f"base: &x0 {{k: {ctx.canary}}}"]
    for level in range(1, 150):
        lines.append(f"m{level}: &x{level}\n  <<: *x{level - 1}\n  v{level}: 1")
    return "\n".join(lines) + "\n"


def _nested(opening: str, closing: str, depth: int = 10_000) -> Callable[[Ctx], str]:
    return lambda ctx: (
        f"security:\n  secret_key: {ctx.canary}\nx: " + opening * depth + closing * depth + "\n"
    )


def _big(ctx: Ctx) -> str:
    return f"security:\n  secret_key: {ctx.canary}\npadding: '" + "p" * (2 << 20) + "'\n"


def _latin1(ctx: Ctx) -> bytes:
    return b"security:\n  secret_key: caf\xe9-" + ctx.canary.encode() + b"\n"


def _special(make: Callable[[Path], None], name: str = _FILE) -> Callable[[Ctx], None]:
    """Make ``name`` something other than a regular file (every secret set in the environment)."""

    def setup(ctx: Ctx) -> None:
        make(ctx.tmp / name)
        ctx.environ.update(_OTHERS)

    return setup


def _load_dir(ctx: Ctx) -> object:
    ctx.name(_FILE)
    return SecureConfigManager(ctx.tmp, env="production", environ=ctx.environ)


def _special_row(
    id: str, make: Callable[[Path], None], act: Callable[[Ctx], object] = _load
) -> Row:
    return Row(
        id=f"yaml-{id}",
        act=act,
        expect=ConfigurationError,
        named=("regular file",),
        setup=_special(make),
        deadline_seconds=3.0,
    )


ROWS = [
    # -- what safe_load refuses, named by file and line -------------------------------------------
    _row(
        "python-object-apply",
        'x: !!python/object/apply:os.system ["echo CANARY"]\n',
        named=("line 1",),
    ),
    _row("python-name", "x: !!python/name:os.system\ny: CANARY\n", named=("line 1",)),
    _row(
        "python-object-new",
        "x: !!python/object/new:subprocess.Popen [[CANARY]]\n",
        named=("line 1",),
    ),
    _row("python-module", "x: !!python/module:os\n"),
    _row("custom-tag", "security:\n  secret_key: !vault CANARY\n", named=("line 2",)),
    _row(
        "binary-tag",
        "security:\n  secret_key: !!binary Q0FOQVJZ\n",
        expect=ValidationError,
        named=("security.secret_key",),
    ),
    # -- alias bombs, recursion, depth, size ------------------------------------------------------
    _row("alias-bomb-billion-laughs", _bomb, named=("alias",)),
    _row("alias-bomb-merge-keys", _merge_bomb, named=("alias",)),
    _row("alias-undefined", "security:\n  secret_key: *nothing\n", named=("line 2",)),
    _row("nested-brackets-10000", _nested("[", "]"), named=("nested",)),
    _row("nested-braces-10000", _nested("{a: ", "}"), named=("nested",)),
    _row("larger-than-a-mebibyte", _big, named=("limit",)),
    _special_row("file-is-a-fifo", lambda p: os.mkfifo(p)),
    _special_row("file-is-dev-zero", lambda p: p.symlink_to("/dev/zero")),
    _special_row("file-is-a-directory", lambda p: p.mkdir()),
    _special_row("dir-holds-a-fifo", lambda p: os.mkfifo(p), act=_load_dir),
    _special_row("dir-holds-a-broken-link", lambda p: p.symlink_to("absent.yaml"), act=_load_dir),
    _special_row("dir-holds-dev-zero", lambda p: p.symlink_to("/dev/zero"), act=_load_dir),
    Row(
        id="yaml-config-file-variable-is-dev-zero",
        act=lambda ctx: SecureConfigManager(env="production", environ=ctx.environ),
        expect=ConfigurationError,
        named=("/dev/zero", "regular file"),
        setup=lambda ctx: ctx.environ.update(_OTHERS, YOSAI_CONFIG_FILE="/dev/zero"),
        deadline_seconds=3.0,
    ),
    # -- duplicates and structure -----------------------------------------------------------------
    _row(
        "duplicate-secret-key",
        "security:\n  secret_key: first-value-1234567890\n  secret_key: CANARY\n",
        named=("duplicate", "secret_key"),
    ),
    _row(
        "duplicate-section",
        "security:\n  a: 1\nsecurity:\n  secret_key: CANARY\n",
        named=("duplicate",),
    ),
    _row("top-level-list", "- CANARY\n- b\n", named=("mapping",)),
    _row("top-level-scalar", "CANARY\n", named=("mapping",)),
    _row("top-level-int-key", "1: CANARY\n", named=("not a string",)),
    # -- broken text: the offending line (with the canary) is never quoted ------------------------
    _row("unterminated-quote", 'security:\n  secret_key: "CANARY\n', named=(_FILE,)),
    _row("tab-indentation", "security:\n\tsecret_key: CANARY\n", named=("line 2",)),
    _row("bad-indentation", "security:\n  secret_key: CANARY\n    other: x\n", named=("line",)),
    _row("nul-byte", lambda ctx: f"security:\n  secret_key: {ctx.canary}\x00\n", named=(_FILE,)),
    _row("not-utf8", _latin1, named=("UTF-8",)),
    # -- YAML 1.1 coercions of secret fields ------------------------------------------------------
    _row(
        "no-as-false-db-password",
        "database:\n  password: no\n",
        ValidationError,
        leave=("DB_PASSWORD",),
        named=("database.password",),
    ),
    _row(
        "on-as-true-client-secret",
        "auth0:\n  client_secret: on\n",
        ValidationError,
        leave=("AUTH0_CLIENT_SECRET",),
        named=("auth0.client_secret",),
    ),
    _row(
        "octal-secret-key",
        "security:\n  secret_key: 0777\n",
        ValidationError,
        leave=("SECRET_KEY",),
        named=("security.secret_key",),
    ),
    _row(
        "float-secret-key",
        "security:\n  secret_key: 6.02e+23\n",
        ValidationError,
        leave=("SECRET_KEY",),
        named=("security.secret_key",),
    ),
    _row(
        "date-db-password",
        "database:\n  password: 2001-12-14\n",
        ValidationError,
        leave=("DB_PASSWORD",),
        named=("database.password",),
    ),
    _row(
        "int-db-password",
        "database:\n  password: 1234567890\n",
        ValidationError,
        leave=("DB_PASSWORD",),
        named=("database.password",),
    ),
    _row(
        "list-secret-key",
        "security:\n  secret_key: [CANARY, b]\n",
        ValidationError,
        leave=("SECRET_KEY",),
        named=("security.secret_key",),
    ),
    _row(
        "mapping-secret-key",
        "security:\n  secret_key: {a: CANARY}\n",
        ValidationError,
        leave=("SECRET_KEY",),
        named=("security.secret_key",),
    ),
    _row(
        "null-secret-key",
        "security:\n  secret_key: ~\n",
        ValidationError,
        leave=("SECRET_KEY",),
        named=("SECRET_KEY",),
    ),
    _row(
        "empty-secret-key",
        "security:\n  secret_key: ''\n",
        ValidationError,
        leave=("SECRET_KEY",),
        named=("SECRET_KEY",),
    ),
    _row(
        "section-is-a-string",
        "security: CANARY\n",
        ValidationError,
        leave=("SECRET_KEY",),
        named=("SECRET_KEY",),
    ),
    _row(
        "file-reference-with-nul",
        'database:\n  password: "file:/run/secrets/db\\0password"\n',
        ValidationError,
        leave=("DB_PASSWORD",),
        named=("database.password",),
    ),
    _row(
        "vault-reference-escaping-its-mount",
        "database:\n  password: vault:secret/data/%2e%2e/%2E%2E/sys/mounts#secret/\n",
        ValidationError,
        leave=("DB_PASSWORD",),
        named=("database.password",),
    ),
    _row(
        "typo-scheme-reference",
        "database:\n  password: vualt:secret/data/db#password\n",
        ValidationError,
        leave=("DB_PASSWORD",),
        named=("database.password",),
    ),
]
