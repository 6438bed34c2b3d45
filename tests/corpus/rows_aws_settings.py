"""AWS settings and credentials: URLs with user:password@, unusable keys, odd versions (class 9).

An endpoint URL with credentials (as a variable: refused before botocore can echo it; in settings
built in code or a client the caller built: taken out, and botocore's chained errors rebuilt
without them), timeouts and proxy errors that quote such URLs (raised from botocore's own
``before-send`` hook: a stand-in for a network that times out), a proxy URL with credentials,
credentials no signed request can carry, a version stage or id of the wrong shape, no region.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.corpus import Ctx, Row, closed_port
from tests.corpus.helpers import AWS_DEADLINE, AWS_REGION, aws_environ, get, manager
from yosai_secrets.errors import (
    BackendUnavailableError,
    ConfigurationError,
)


def _name(ctx: Ctx) -> str:
    return f"corpus/{ctx.canary[-8:]}"


def _closed(ctx: Ctx) -> None:
    aws_environ(ctx, f"http://admin:{ctx.canary}@127.0.0.1:{closed_port()}")


def _live_with_credentials(ctx: Ctx) -> None:
    aws_environ(ctx)
    port = ctx.server("moto_server").port
    ctx.environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = f"http://admin:{ctx.canary}@127.0.0.1:{port}"


def _given_client(endpoint: Callable[[Ctx], str]) -> Callable[[Ctx], str]:
    """Read through a boto3 client the caller built with ``endpoint`` (credentials in it)."""

    def act(ctx: Ctx) -> str:
        import boto3
        from botocore.config import Config

        client = boto3.session.Session().client(
            "secretsmanager",
            region_name=AWS_REGION,
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
        region=AWS_REGION,
        endpoint_url=f"http://admin:{ctx.canary}@127.0.0.1:{closed_port()}",
        max_attempts=1,
        credentials=("testing", "testing", None),
    )
    ctx.name("SECRET_KEY")
    return SecretManager(AwsBackend(settings=settings), environ={}).get("SECRET_KEY")


def _proxied(ctx: Ctx) -> None:
    aws_environ(ctx, f"http://127.0.0.1:{closed_port()}")
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


def _no_region(ctx: Ctx) -> None:
    aws_environ(ctx)
    del ctx.environ["AWS_REGION"]


ROWS = [
    Row(
        id="aws-endpoint-with-credentials-closed",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_ENDPOINT_URL",),
        setup=_closed,
        why="issue 12 class 9: URL credentials are refused before botocore can echo them",
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-endpoint-with-credentials-live",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_ENDPOINT_URL_SECRETS_MANAGER",),
        setup=_live_with_credentials,
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-given-client-endpoint-with-credentials",
        act=_given_client(lambda ctx: f"http://admin:{ctx.canary}@127.0.0.1:{closed_port()}"),
        expect=BackendUnavailableError,
        why="issue 12 class 9: a client built by the caller; botocore's chained error is scrubbed",
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-settings-endpoint-with-credentials",
        act=_settings_endpoint,
        expect=BackendUnavailableError,
        why="AwsSettings built in code: the credentials are taken out before botocore sees them",
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-connect-timeout-url-with-credentials",
        act=_raised_in_send("ConnectTimeoutError", endpoint_url="http://u:CANARY@10.0.0.1/"),
        expect=BackendUnavailableError,
        setup=aws_environ,
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
        why="stand-in: botocore's error raised from its before-send hook, as its HTTP layer does",
    ),
    Row(
        id="aws-read-timeout-url-with-credentials",
        act=_raised_in_send("ReadTimeoutError", endpoint_url="https://u:CANARY@sm.example.com/"),
        expect=BackendUnavailableError,
        setup=aws_environ,
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
        why="stand-in, as above",
    ),
    Row(
        id="aws-proxy-refused-url-with-credentials",
        act=_raised_in_send(
            "ProxyConnectionError", proxy_url="http://proxy:CANARY@10.0.0.2:3128", error="refused"
        ),
        expect=BackendUnavailableError,
        setup=aws_environ,
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
        why="stand-in, as above",
    ),
    Row(
        id="aws-proxy-with-credentials",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=BackendUnavailableError,
        named=("SECRET_KEY",),
        setup=_proxied,
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-access-key-with-crlf",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_ACCESS_KEY_ID",),
        setup=lambda ctx: aws_environ(ctx, AWS_ACCESS_KEY_ID=f"AKIA\r\nX-Injected: {ctx.canary}"),
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
        why="http.client's ValueError would quote the signed Authorization header",
    ),
    Row(
        id="aws-session-token-with-crlf",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_SESSION_TOKEN",),
        setup=lambda ctx: aws_environ(ctx, AWS_SESSION_TOKEN=f"tok\r\n{ctx.canary}"),
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-session-token-non-ascii",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_SESSION_TOKEN",),
        setup=lambda ctx: aws_environ(ctx, AWS_SESSION_TOKEN=f"tök-{ctx.canary}"),
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-version-stage-with-crlf",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_SECRET_VERSION_STAGE",),
        setup=lambda ctx: aws_environ(ctx, AWS_SECRET_VERSION_STAGE="AWSCURRENT\r\nX: 1"),
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-version-id-traversal",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_SECRET_VERSION_ID",),
        setup=lambda ctx: aws_environ(ctx, AWS_SECRET_VERSION_ID="../../x"),
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
    Row(
        id="aws-endpoint-credentials-without-scheme",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_ENDPOINT_URL",),
        setup=lambda ctx: aws_environ(ctx, f"admin:{ctx.canary}@127.0.0.1:4566"),
    ),
    Row(
        id="aws-endpoint-not-a-url",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_ENDPOINT_URL",),
        setup=lambda ctx: aws_environ(ctx, "secretsmanager at port 4566"),
    ),
    Row(
        id="aws-no-region",
        act=lambda ctx: get(ctx, "SECRET_KEY"),
        expect=ConfigurationError,
        named=("AWS_REGION",),
        setup=_no_region,
        needs=("moto_server",),
        deadline_seconds=AWS_DEADLINE,
    ),
]
