"""AWS Secrets Manager errors, from moto's server where it can produce them.

Produced by moto (``moto_server``): a missing secret, one scheduled for deletion, a binary-only
secret, a plain string read with ``#field``, JSON without the field, a field that is null, JSON
nested 30,000 deep, an endpoint that is closed (with credentials in its URL, and through a proxy
with credentials in its URL). On moto with its IAM checks on (``moto_iam``): an access key nobody
issued, a wrong secret key, and a user whose policy does not allow the read. moto models no KMS
failure, throttling or expired session token: those are injected into the real botocore client
through its own ``before-call`` hook (``tests/aws_support.inject_error``), and the row says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.aws_support import inject_error
from tests.corpus import Ctx, Row, closed_port
from tests.corpus.helpers import get, manager
from yosai_secrets.errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionError,
    BackendUnavailableError,
    ConfigurationError,
    SecretNotFoundError,
)

_REGION = "us-east-1"
#: boto3 builds a client per row (about 0.1 s) and moto closes every connection: generous.
_DEADLINE = 10.0


def _name(ctx: Ctx) -> str:
    return f"corpus/{ctx.canary[-8:]}"


def _env(ctx: Ctx, endpoint: str | None = None, **more: str) -> None:
    if endpoint is None:
        endpoint = ctx.server("moto_server").endpoint_url
    ctx.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=_REGION,
        AWS_MAX_ATTEMPTS="1",
        SECRET_BACKEND="aws",
    )
    ctx.environ.update(more)


def _stored(**secret: Any) -> Callable[[Ctx], None]:
    """Create the row's secret (``SecretString``/``SecretBinary``, CANARY replaced)."""

    def setup(ctx: Ctx) -> None:
        _env(ctx)
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
        _env(
            ctx,
            server.endpoint_url,
            AWS_ACCESS_KEY_ID=keys.get(key, key.replace("CANARY", ctx.canary)),
            AWS_SECRET_ACCESS_KEY=keys.get(secret, secret.replace("CANARY", ctx.canary)),
        )
        return get(ctx, "aws-secrets:GUARDED")

    return act


def _closed(ctx: Ctx) -> None:
    _env(ctx, f"http://admin:{ctx.canary}@127.0.0.1:{closed_port()}")


def _live_with_credentials(ctx: Ctx) -> None:
    _env(ctx)
    port = ctx.server("moto_server").port
    ctx.environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = f"http://admin:{ctx.canary}@127.0.0.1:{port}"


def _given_client(endpoint: Callable[[Ctx], str]) -> Callable[[Ctx], str]:
    """Read through a boto3 client the caller built with ``endpoint`` (credentials in it)."""

    def act(ctx: Ctx) -> str:
        import boto3
        from botocore.config import Config

        client = boto3.session.Session().client(
            "secretsmanager",
            region_name=_REGION,
            endpoint_url=endpoint(ctx),
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}),
        )
        from yosai_secrets.backends.aws import AwsBackend
        from yosai_secrets.manager import SecretManager

        ctx.name("SECRET_KEY")
        return SecretManager(AwsBackend(client), environ={}).get("SECRET_KEY")

    return act


def _settings_endpoint(ctx: Ctx) -> str:
    """Read with AwsSettings built in code, its endpoint holding user:password@."""
    from yosai_secrets.backends.aws import AwsBackend, AwsSettings
    from yosai_secrets.manager import SecretManager

    settings = AwsSettings(
        region=_REGION,
        endpoint_url=f"http://admin:{ctx.canary}@127.0.0.1:{closed_port()}",
        max_attempts=1,
        credentials=("testing", "testing", None),
    )
    ctx.name("SECRET_KEY")
    return SecretManager(AwsBackend(settings=settings), environ={}).get("SECRET_KEY")


def _proxied(ctx: Ctx) -> None:
    _env(ctx, f"http://127.0.0.1:{closed_port()}")
    # botocore reads the proxy from the process environment only.
    ctx.monkeypatch.setenv("HTTP_PROXY", f"http://proxyuser:{ctx.canary}@127.0.0.1:{closed_port()}")
    ctx.monkeypatch.delenv("NO_PROXY", raising=False)
    ctx.monkeypatch.delenv("no_proxy", raising=False)


def _raised_in_send(kind: str, **fields: str) -> Callable[[Ctx], str]:
    """Read with botocore's error ``kind`` (CANARY in its fields) raised as the request is sent.

    A stand-in for a network that times out or a proxy that refuses: botocore raises these from
    its HTTP layer with the URL as configured, ``user:password@`` included.
    """

    def act(ctx: Ctx) -> str:
        from botocore import exceptions

        built = manager(ctx)
        backend: Any = built.backend
        values = {k: v.replace("CANARY", ctx.canary) for k, v in fields.items()}

        def fail(**_: Any) -> None:
            raise getattr(exceptions, kind)(**values)

        backend.client.meta.events.register("before-send.secrets-manager.GetSecretValue", fail)
        ctx.name(_name(ctx))
        return built.get(f"aws-secrets:{_name(ctx)}")

    return act


def _pending_stage(ctx: Ctx) -> None:
    _stored(SecretString="CANARY")(ctx)
    ctx.environ["AWS_SECRET_VERSION_STAGE"] = "AWSPENDING"


def _no_region(ctx: Ctx) -> None:
    _env(ctx)
    del ctx.environ["AWS_REGION"]


_DEEP = 30_000

ROWS = [
    Row(
        id="aws-not-found",
        act=_read(),
        expect=SecretNotFoundError,
        named=(_REGION,),
        setup=_env,
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-not-found-json-pair",
        act=lambda ctx: get(ctx, "DB_PASSWORD"),
        expect=SecretNotFoundError,
        named=("DB_PASSWORD", "DB_CREDENTIALS"),
        setup=lambda ctx: _env(ctx, SECRET_NAME_PREFIX=f"absent-{ctx.canary[-6:]}/"),
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-not-found-pending-stage",
        act=_read(),
        expect=SecretNotFoundError,
        named=("AWSPENDING",),
        setup=_pending_stage,
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-scheduled-for-deletion",
        act=_read(),
        expect=BackendError,
        named=("deletion",),
        setup=_scheduled,
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-binary-only",
        act=_read(),
        expect=ConfigurationError,
        named=("binary", "get_bytes"),
        setup=_stored(SecretBinary=b"\x00\xffCANARY\x01"),
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-binary-with-field",
        act=_read("#password"),
        expect=ConfigurationError,
        named=("password",),
        setup=_stored(SecretBinary=b"\xff\xfeCANARY"),
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-non-json-with-field",
        act=_read("#password"),
        expect=ConfigurationError,
        named=("password", "not JSON"),
        setup=_stored(SecretString="CANARY not json {"),
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-json-array-with-field",
        act=_read("#password"),
        expect=ConfigurationError,
        named=("password",),
        setup=_stored(SecretString='["CANARY"]'),
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-json-missing-field",
        act=_read("#pasword"),
        expect=SecretNotFoundError,
        named=("pasword", "password"),
        setup=_stored(SecretString='{"password": "CANARY", "username": "u"}'),
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-json-null-field",
        act=_read("#password"),
        expect=SecretNotFoundError,
        named=("password",),
        setup=_stored(SecretString='{"password": null, "other": "CANARY"}'),
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-json-deeply-nested-with-field",
        act=_read("#password"),
        expect=ConfigurationError,
        named=("password",),
        setup=_stored(SecretString='{"x": "CANARY", "y": ' + "[" * _DEEP + "]" * _DEEP + "}"),
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-kms-decryption-failure",
        act=_injected("DecryptionFailure"),
        expect=BackendError,
        named=("KMS",),
        setup=_env,
        needs=("moto_server",),
        why="stand-in: moto models no KMS failure; injected through botocore's before-call hook",
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-throttled-throughout",
        act=_injected("ThrottlingException"),
        expect=BackendUnavailableError,
        named=("ThrottlingException",),
        setup=_env,
        needs=("moto_server",),
        why="stand-in: moto never throttles; injected",
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-expired-session-token",
        act=_injected("ExpiredTokenException", status=403),
        expect=BackendAuthError,
        setup=_env,
        needs=("moto_server",),
        why="stand-in: moto does not expire session tokens; injected",
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-access-denied-injected",
        act=_injected("AccessDeniedException", status=403),
        expect=BackendPermissionError,
        setup=_env,
        needs=("moto_server",),
        why="stand-in twin of aws-access-denied: AWS's own message text may name the identity",
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-access-denied",
        act=_iam("DENIED_ID", "DENIED_SECRET"),
        expect=BackendPermissionError,
        named=("GUARDED", "access denied"),
        needs=("moto_iam",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-unknown-access-key",
        act=_iam("CANARY", "whatever"),
        expect=BackendAuthError,
        named=("GUARDED",),
        needs=("moto_iam",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-wrong-secret-key",
        act=_iam("DENIED_ID", "CANARY"),
        expect=BackendAuthError,
        named=("GUARDED",),
        needs=("moto_iam",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-endpoint-with-credentials-closed",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_ENDPOINT_URL",),
        setup=_closed,
        why="issue 12 class 9: URL credentials are refused before botocore can echo them",
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-endpoint-with-credentials-live",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_ENDPOINT_URL_SECRETS_MANAGER",),
        setup=_live_with_credentials,
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-given-client-endpoint-with-credentials",
        act=_given_client(lambda ctx: f"http://admin:{ctx.canary}@127.0.0.1:{closed_port()}"),
        expect=BackendUnavailableError,
        why="issue 12 class 9: a client built by the caller; botocore's chained error is scrubbed",
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-settings-endpoint-with-credentials",
        act=_settings_endpoint,
        expect=BackendUnavailableError,
        why="AwsSettings built in code: the credentials are taken out before botocore sees them",
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-connect-timeout-url-with-credentials",
        act=_raised_in_send("ConnectTimeoutError", endpoint_url="http://u:CANARY@10.0.0.1/"),
        expect=BackendUnavailableError,
        setup=_env,
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
        why="stand-in: botocore's error raised from its before-send hook, as its HTTP layer does",
    ),
    Row(
        id="aws-read-timeout-url-with-credentials",
        act=_raised_in_send("ReadTimeoutError", endpoint_url="https://u:CANARY@sm.example.com/"),
        expect=BackendUnavailableError,
        setup=_env,
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
        why="stand-in, as above",
    ),
    Row(
        id="aws-proxy-refused-url-with-credentials",
        act=_raised_in_send(
            "ProxyConnectionError", proxy_url="http://proxy:CANARY@10.0.0.2:3128", error="refused"
        ),
        expect=BackendUnavailableError,
        setup=_env,
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
        why="stand-in, as above",
    ),
    Row(
        id="aws-proxy-with-credentials",
        act=_read(),
        expect=BackendUnavailableError,
        setup=_proxied,
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-access-key-with-crlf",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_ACCESS_KEY_ID",),
        setup=lambda ctx: _env(ctx, AWS_ACCESS_KEY_ID=f"AKIA\r\nX-Injected: {ctx.canary}"),
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
        why="http.client's ValueError would quote the signed Authorization header",
    ),
    Row(
        id="aws-session-token-with-crlf",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_SESSION_TOKEN",),
        setup=lambda ctx: _env(ctx, AWS_SESSION_TOKEN=f"tok\r\n{ctx.canary}"),
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-session-token-non-ascii",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_SESSION_TOKEN",),
        setup=lambda ctx: _env(ctx, AWS_SESSION_TOKEN=f"tök-{ctx.canary}"),
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-version-stage-with-crlf",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_SECRET_VERSION_STAGE",),
        setup=lambda ctx: _env(ctx, AWS_SECRET_VERSION_STAGE="AWSCURRENT\r\nX: 1"),
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-version-id-traversal",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_SECRET_VERSION_ID",),
        setup=lambda ctx: _env(ctx, AWS_SECRET_VERSION_ID="../../x"),
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
    Row(
        id="aws-endpoint-credentials-without-scheme",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_ENDPOINT_URL",),
        setup=lambda ctx: _env(ctx, f"admin:{ctx.canary}@127.0.0.1:4566"),
    ),
    Row(
        id="aws-endpoint-not-a-url",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_ENDPOINT_URL",),
        setup=lambda ctx: _env(ctx, "secretsmanager at port 4566"),
    ),
    Row(
        id="aws-no-region",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_REGION",),
        setup=_no_region,
        needs=("moto_server",),
        deadline_seconds=_DEADLINE,
    ),
]
