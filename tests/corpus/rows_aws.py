"""AWS Secrets Manager errors, from moto's server where it can produce them.

Produced by moto (``moto_server``): a missing secret, one scheduled for deletion, a binary-only
secret, a plain string read with ``#field``, JSON without the field, a field that is null, JSON
nested 30,000 deep. On moto with its IAM checks on (``moto_iam``): an access key nobody
issued, a wrong secret key, and a user whose policy does not allow the read. moto models no KMS
failure, throttling or expired session token: those are injected into the real botocore client
through its own ``before-call`` hook (``tests/aws_support.inject_error``), and the row says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.aws_support import inject_error
from tests.corpus import Ctx, Row
from tests.corpus.helpers import AWS_DEADLINE, AWS_REGION, aws_environ, get, manager
from yosai_secrets.errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionError,
    BackendUnavailableError,
    ConfigurationError,
    SecretNotFoundError,
)


def _name(ctx: Ctx) -> str:
    return f"corpus/{ctx.canary[-8:]}"


def _stored(**secret: Any) -> Callable[[Ctx], None]:
    """Create the row's secret (``SecretString``/``SecretBinary``, CANARY replaced)."""

    def setup(ctx: Ctx) -> None:
        aws_environ(ctx)
        value = {
            k: v.replace("CANARY", ctx.canary)
            if isinstance(v, str)
            else v.replace(b"CANARY", ctx.canary.encode())
            for k, v in secret.items()
        }
        ctx.server("moto_server").client().create_secret(Name=_name(ctx), **value)

    return setup


def _read(suffix: str = "") -> Callable[[Ctx], str]:
    def act(ctx: Ctx) -> str:
        ctx.name(_name(ctx))
        return get(ctx, f"aws-secrets:{_name(ctx)}{suffix}")

    return act


def _scheduled(ctx: Ctx) -> None:
    _stored(SecretString="CANARY")(ctx)
    client = ctx.server("moto_server").client()
    client.delete_secret(SecretId=_name(ctx), RecoveryWindowInDays=7)


def _injected(code: str, **kwargs: Any) -> Callable[[Ctx], str]:
    """Read the row's secret with ``code`` injected into the client (a stand-in for AWS)."""

    def act(ctx: Ctx) -> str:
        ctx.name(_name(ctx))
        built = manager(ctx)
        backend: Any = built.backend
        inject_error(
            backend.client, "GetSecretValue", code, message=f"detail {ctx.canary}", **kwargs
        )
        return built.get(f"aws-secrets:{_name(ctx)}")

    return act


def _iam(key: str, secret: str) -> Callable[[Ctx], str]:
    """Read GUARDED from the IAM-checking moto with the given keys (CANARY, or the denied user)."""

    def act(ctx: Ctx) -> str:
        server, denied = ctx.server("moto_iam")
        keys = {"DENIED_ID": denied["id"], "DENIED_SECRET": denied["secret"]}
        aws_environ(
            ctx,
            server.endpoint_url,
            AWS_ACCESS_KEY_ID=keys.get(key, key.replace("CANARY", ctx.canary)),
            AWS_SECRET_ACCESS_KEY=keys.get(secret, secret.replace("CANARY", ctx.canary)),
        )
        return get(ctx, "aws-secrets:GUARDED")

    return act


def _pending_stage(ctx: Ctx) -> None:
    _stored(SecretString="CANARY")(ctx)
    ctx.environ["AWS_SECRET_VERSION_STAGE"] = "AWSPENDING"


_DEEP = 30_000


ROWS = [
    Row(
        id="aws-not-found",
        act=_read(),
        expect=SecretNotFoundError,
        named=(AWS_REGION,),
        setup=aws_environ,
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-not-found-json-pair",
        act=lambda ctx: get(ctx, "DB_PASSWORD"),
        expect=SecretNotFoundError,
        named=("DB_PASSWORD", "DB_CREDENTIALS"),
        setup=lambda ctx: aws_environ(ctx, SECRET_NAME_PREFIX=f"absent-{ctx.canary[-6:]}/"),
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-not-found-pending-stage",
        act=_read(),
        expect=SecretNotFoundError,
        named=("AWSPENDING",),
        setup=_pending_stage,
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-scheduled-for-deletion",
        act=_read(),
        expect=BackendError,
        named=("deletion",),
        setup=_scheduled,
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-binary-only",
        act=_read(),
        expect=ConfigurationError,
        named=("binary", "get_bytes"),
        setup=_stored(SecretBinary=b"\x00\xffCANARY\x01"),
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-binary-with-field",
        act=_read("#password"),
        expect=ConfigurationError,
        named=("password",),
        setup=_stored(SecretBinary=b"\xff\xfeCANARY"),
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-non-json-with-field",
        act=_read("#password"),
        expect=ConfigurationError,
        named=("password", "not JSON"),
        setup=_stored(SecretString="CANARY not json {"),
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-json-array-with-field",
        act=_read("#password"),
        expect=ConfigurationError,
        named=("password",),
        setup=_stored(SecretString='["CANARY"]'),
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-json-missing-field",
        act=_read("#pasword"),
        expect=SecretNotFoundError,
        named=("pasword", "password"),
        setup=_stored(SecretString='{"password": "CANARY", "username": "u"}'),
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-json-null-field",
        act=_read("#password"),
        expect=SecretNotFoundError,
        named=("password",),
        setup=_stored(SecretString='{"password": null, "other": "CANARY"}'),
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-json-deeply-nested-with-field",
        act=_read("#password"),
        expect=ConfigurationError,
        named=("password",),
        setup=_stored(SecretString='{"x": "CANARY", "y": ' + "[" * _DEEP + "]" * _DEEP + "}"),
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-kms-decryption-failure",
        act=_injected("DecryptionFailure"),
        expect=BackendError,
        named=("KMS",),
        setup=aws_environ,
        needs=("moto_server",),
        why="stand-in: moto models no KMS failure; injected through botocore's before-call hook",
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-throttled-throughout",
        act=_injected("ThrottlingException"),
        expect=BackendUnavailableError,
        named=("ThrottlingException",),
        setup=aws_environ,
        needs=("moto_server",),
        why="stand-in: moto never throttles; injected",
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-expired-session-token",
        act=_injected("ExpiredTokenException", status=403),
        expect=BackendAuthError,
        setup=aws_environ,
        needs=("moto_server",),
        why="stand-in: moto does not expire session tokens; injected",
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-access-denied-injected",
        act=_injected("AccessDeniedException", status=403),
        expect=BackendPermissionError,
        setup=aws_environ,
        needs=("moto_server",),
        why="stand-in twin of aws-access-denied: AWS's own message text may name the identity",
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-access-denied",
        act=_iam("DENIED_ID", "DENIED_SECRET"),
        expect=BackendPermissionError,
        named=("GUARDED", "access denied"),
        needs=("moto_iam",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-unknown-access-key",
        act=_iam("CANARY", "whatever"),
        expect=BackendAuthError,
        named=("GUARDED",),
        needs=("moto_iam",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-wrong-secret-key",
        act=_iam("DENIED_ID", "CANARY"),
        expect=BackendAuthError,
        named=("GUARDED",),
        needs=("moto_iam",),
        deadline_seconds=AWS_DEADLINE,
    ),
]
