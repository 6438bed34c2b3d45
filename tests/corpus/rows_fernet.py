"""Fernet: no key, malformed keys, the wrong key, truncated, tampered and foreign tokens.

The canary is the plaintext that was encrypted, or a malformed key itself. Encrypted values reach
the library from a variable (``SECRET_KEY=enc:...`` read by ``get``), from a configuration file
(``security.secret_key: enc:...`` resolved by ``SecureConfigManager``) and from ``FernetBox``
directly. Fernet tokens here carry no TTL (``FERNET_KEY`` has none to give), so there is no
"expired" row: a token is valid for as long as a key in ``FERNET_KEY`` decrypts it.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable

from cryptography.fernet import Fernet

from tests.corpus import ACCEPTED, Ctx, Row
from tests.corpus.helpers import get
from yosai_secrets.config import SecureConfigManager
from yosai_secrets.crypto import FernetBox
from yosai_secrets.errors import ConfigurationError, DecryptionError, ValidationError

_KEY = Fernet.generate_key().decode()
_OTHER_KEY = Fernet.generate_key().decode()


def _token(ctx: Ctx, key: str = _KEY, plain: bytes | None = None) -> str:
    return Fernet(key.encode()).encrypt(plain or ctx.canary.encode()).decode()


def _env_value(
    value: Callable[[Ctx], str], fernet_key: Callable[[Ctx], str | None]
) -> Callable[[Ctx], str]:
    """Read SECRET_KEY from the environment: ``value`` (a token) under ``fernet_key``."""

    def act(ctx: Ctx) -> str:
        key = fernet_key(ctx)
        if key is not None:
            ctx.environ["FERNET_KEY"] = key
        ctx.environ["SECRET_KEY"] = value(ctx)
        ctx.name("SECRET_KEY")
        return get(ctx, "SECRET_KEY", "env")

    return act


def _good(ctx: Ctx) -> str:
    return "enc:" + _token(ctx)


def _config(value: Callable[[Ctx], str], fernet_key: str | None) -> Row:
    """A production configuration whose secret_key is ``value`` (the rest from variables)."""

    def setup(ctx: Ctx) -> None:
        path = ctx.tmp / "production.yaml"
        path.write_text(f"security:\n  secret_key: '{value(ctx)}'\n", encoding="utf-8")
        ctx.environ.update(
            DB_PASSWORD="db-password-corpus-123",
            AUTH0_CLIENT_ID="client-id",
            AUTH0_CLIENT_SECRET="client-secret-corpus-123",
            AUTH0_DOMAIN="tenant.eu.auth0.com",
            AUTH0_AUDIENCE="https://api.example.com/",
        )
        if fernet_key is not None:
            ctx.environ["FERNET_KEY"] = fernet_key

    def act(ctx: Ctx) -> object:
        ctx.name("security.secret_key")
        return SecureConfigManager(
            ctx.tmp / "production.yaml", env="production", environ=ctx.environ
        )

    return Row(id="", act=act, expect=ValidationError, setup=setup)


def _config_row(id: str, value: Callable[[Ctx], str], fernet_key: str | None, **kw: object) -> Row:
    return dataclasses.replace(_config(value, fernet_key), id=id, **kw)


def _box(
    keys: Callable[[Ctx], str], call: Callable[[FernetBox, Ctx], object]
) -> Callable[..., object]:
    def act(ctx: Ctx) -> object:
        return call(FernetBox(keys(ctx)), ctx)

    return act


def _tampered(ctx: Ctx) -> str:
    token = _token(ctx)
    middle = len(token) // 2
    flipped = "A" if token[middle] != "A" else "B"
    return "enc:" + token[:middle] + flipped + token[middle + 1 :]


def _same(value: str, expected: str) -> None:
    assert value == expected


def _wrapped(ctx: Ctx) -> str:
    token = _token(ctx)
    return f"enc:{token[:40]}\n{token[40:]}"


def _bad_length_key(ctx: Ctx) -> str:
    # Valid urlsafe base64, but 36 bytes: the canary is the key itself.
    raw = (ctx.canary.replace("-", "_") + "A" * 48)[:48]
    assert len(base64.urlsafe_b64decode(raw)) == 36
    ctx.plant(raw)
    return raw


ROWS = [
    Row(
        id="fernet-no-key",
        act=_env_value(_good, lambda ctx: None),
        expect=DecryptionError,
        named=("FERNET_KEY",),
    ),
    Row(
        id="fernet-empty-key",
        act=_env_value(_good, lambda ctx: ""),
        expect=DecryptionError,
        named=("FERNET_KEY",),
    ),
    Row(
        id="fernet-blank-keys",
        act=_env_value(_good, lambda ctx: " , ,\t, "),
        expect=DecryptionError,
        named=("FERNET_KEY",),
    ),
    Row(
        id="fernet-malformed-key",
        act=_env_value(_good, lambda ctx: ctx.canary),
        expect=DecryptionError,
        named=("FERNET_KEY", "#1"),
    ),
    Row(
        id="fernet-key-wrong-length",
        act=_env_value(_good, _bad_length_key),
        expect=DecryptionError,
        named=("FERNET_KEY",),
    ),
    Row(
        id="fernet-second-key-malformed",
        act=_env_value(_good, lambda ctx: f"{_KEY},{ctx.canary}"),
        expect=DecryptionError,
        named=("#2",),
    ),
    Row(
        id="fernet-key-not-ascii",
        act=_env_value(_good, lambda ctx: "ключ-" + ctx.canary),
        expect=DecryptionError,
        named=("FERNET_KEY",),
    ),
    Row(
        id="fernet-wrong-key",
        act=_env_value(_good, lambda ctx: _OTHER_KEY),
        expect=DecryptionError,
        named=("FERNET_KEY",),
    ),
    Row(
        id="fernet-truncated-token",
        act=_env_value(lambda ctx: "enc:" + _token(ctx)[:-12], lambda ctx: _KEY),
        expect=DecryptionError,
    ),
    Row(
        id="fernet-truncated-to-header",
        act=_env_value(lambda ctx: "enc:gAAAAA", lambda ctx: _KEY),
        expect=DecryptionError,
    ),
    Row(
        id="fernet-bare-token-truncated",
        act=_env_value(lambda ctx: _token(ctx)[:-1], lambda ctx: _KEY),
        expect=DecryptionError,
        why="a token without enc: is recognised by its shape; one character short is refused",
    ),
    Row(
        id="fernet-prefix-only",
        act=_env_value(lambda ctx: "enc:", lambda ctx: _KEY),
        expect=DecryptionError,
    ),
    Row(
        id="fernet-token-wrapped-over-lines",
        act=lambda ctx: _same(_env_value(_wrapped, lambda ctx: _KEY)(ctx), ctx.canary),
        expect=ACCEPTED,
        why="base64 skips the line break: a token pasted over two lines still decrypts",
    ),
    Row(
        id="fernet-tampered-token",
        act=_env_value(_tampered, lambda ctx: _KEY),
        expect=DecryptionError,
    ),
    Row(
        id="fernet-token-not-ascii",
        act=_env_value(lambda ctx: "enc:gAAAAAé" + _token(ctx)[7:], lambda ctx: _KEY),
        expect=DecryptionError,
    ),
    Row(
        id="fernet-plaintext-not-utf8",
        act=_env_value(
            lambda ctx: "enc:" + _token(ctx, plain=b"\xff\xfe" + ctx.canary.encode()),
            lambda ctx: _KEY,
        ),
        expect=DecryptionError,
        named=("UTF-8",),
    ),
    _config_row("fernet-config-no-key", _good, None, named=("FERNET_KEY",)),
    _config_row("fernet-config-wrong-key", _good, _OTHER_KEY),
    _config_row("fernet-config-truncated", lambda ctx: "enc:" + _token(ctx)[:-20], _KEY),
    Row(
        id="fernet-box-empty",
        act=_box(lambda ctx: "", lambda box, ctx: None),
        expect=DecryptionError,
        named=("FERNET_KEY",),
    ),
    Row(
        id="fernet-box-rotate-garbage",
        act=_box(lambda ctx: _KEY, lambda box, ctx: box.rotate("enc:not-a-token")),
        expect=DecryptionError,
        named=("re-encrypt",),
    ),
    Row(
        id="fernet-box-rotate-foreign",
        act=_box(lambda ctx: _KEY, lambda box, ctx: box.rotate(_token(ctx, _OTHER_KEY))),
        expect=DecryptionError,
        named=("re-encrypt",),
    ),
    Row(
        id="fernet-box-decrypt-non-string",
        act=_box(lambda ctx: _KEY, lambda box, ctx: box.decrypt(12345, name="N")),  # type: ignore[arg-type]
        expect=ConfigurationError,
        named=("N",),
    ),
]
