"""What several row modules do: build a manager for a row, read a key, write to the servers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.corpus import Ctx
from yosai_secrets.manager import SecretManager

__all__ = [
    "AWS_DEADLINE",
    "AWS_REGION",
    "aws_environ",
    "get",
    "manager",
    "reads",
    "vault_environ",
    "vault_put",
    "vault_read",
]

AWS_REGION = "us-east-1"
#: boto3 builds a client per row (about 0.1 s) and moto closes every connection: generous.
AWS_DEADLINE = 10.0


def manager(ctx: Ctx, backend: str | None = None, **environ: str) -> SecretManager:
    """A manager over ``ctx.environ`` plus ``environ``, closed after the row."""
    ctx.environ.update(environ)
    built = SecretManager(backend, environ=ctx.environ)
    ctx.on_close(built.close)
    return built


def get(ctx: Ctx, key: str, backend: str | None = None, **environ: str) -> str:
    """Read ``key`` with a fresh manager for the row (what ``get_secret`` does)."""
    return manager(ctx, backend, **environ).get(key)


def reads(key: str | Callable[[Ctx], str], backend: str | None = None) -> Callable[[Ctx], str]:
    """An act that reads ``key`` (or the key a function builds from the row's context)."""

    def act(ctx: Ctx) -> str:
        return get(ctx, key(ctx) if callable(key) else key, backend)

    return act


def vault_environ(ctx: Ctx, server: Any, token: str | None = None, **more: str) -> None:
    """Point the row's environment at ``server`` (an OpenBao or the stand-in)."""
    ctx.environ.update(
        VAULT_ADDR=server.addr,
        VAULT_TOKEN=token if token is not None else server.token,
        SECRET_BACKEND="vault",
        **more,
    )


def vault_put(server: Any, path: str, data: dict[str, Any]) -> None:
    """Write ``data`` at the KV v2 path ``secret/data/<path>`` (as the root token)."""
    status, _ = server.api("PUT", f"secret/data/{path}", {"data": data})
    assert status == 200, f"writing secret/data/{path} answered {status}"


def vault_read(path: Callable[[Ctx], str], field: str = "password") -> Callable[[Ctx], str]:
    """An act reading ``vault:<path>#<field>``; the message must name the path."""

    def act(ctx: Ctx) -> str:
        where = path(ctx)
        ctx.name(where)
        return get(ctx, f"vault:{where}#{field}")

    return act


def aws_environ(ctx: Ctx, endpoint: str | None = None, **more: str) -> None:
    """Point the row's environment at ``endpoint`` (default: the session's moto), one attempt."""
    if endpoint is None:
        endpoint = ctx.server("moto_server").endpoint_url
    ctx.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=AWS_REGION,
        AWS_MAX_ATTEMPTS="1",
        SECRET_BACKEND="aws",
    )
    ctx.environ.update(more)
