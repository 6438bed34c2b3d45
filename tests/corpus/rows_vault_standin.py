"""Vault answers no real OpenBao gives, from the stand-in (``standin.py`` says why each).

A proxy, a load balancer or a broken server in front of Vault can send them: 429 with odd
``Retry-After`` values, a 307 to a dead leader, slow drips, hangs, cut bodies, non-JSON, 20 MB,
100,000-deep JSON, error strings echoing the token, statuses Vault never uses. The canary is the
token sent (the stand-in echoes it back where a row says so).
"""

from __future__ import annotations

from collections.abc import Callable

from tests.corpus import Ctx, Row
from tests.corpus.helpers import vault_environ, vault_read
from yosai_secrets.errors import (
    BackendError,
    BackendPermissionError,
    BackendUnavailableError,
    SecretNotFoundError,
)


def _standin(**more: str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        more.setdefault("VAULT_MAX_RETRIES", "0")
        vault_environ(ctx, ctx.server("vault_standin"), token=ctx.canary, **more)

    return setup


def _mode(mode: str) -> Callable[[Ctx], str]:
    return lambda ctx: f"secret/data/{mode}"


def _standin_row(
    id: str,
    mode: str,
    expect: type[BaseException],
    *,
    deadline: float = 5.0,
    why: str = "",
    **more: str,
) -> Row:
    return Row(
        id=f"vault-standin-{id}",
        act=vault_read(_mode(mode)),
        expect=expect,
        setup=_standin(**more),
        needs=("vault_standin",),
        deadline_seconds=deadline,
        why=why,
    )


ROWS = [
    _standin_row("429-retry-after", "retry-after", BackendUnavailableError, VAULT_MAX_RETRIES="1"),
    _standin_row(
        "429-retry-after-a-day",
        "retry-after-huge",
        BackendUnavailableError,
        deadline=6.0,
        why="Retry-After: 86400 is capped, and the read deadline stops it",
        VAULT_MAX_RETRIES="5",
        SECRET_READ_TIMEOUT="2",
    ),
    _standin_row("429-retry-after-garbage", "retry-after-garbage", BackendUnavailableError),
    _standin_row(
        "307-dead-leader",
        "redirect",
        BackendUnavailableError,
        why="a standby whose leader died answers 307 to it; never followed with the token",
    ),
    _standin_row("307-location-with-token", "redirect-with-token", BackendUnavailableError),
    _standin_row(
        "slow-drip-body",
        "drip",
        BackendUnavailableError,
        deadline=4.0,
        why="issue 12 class 7: one byte every 0.4 s used to block past 15 s",
        VAULT_TIMEOUT="1",
    ),
    _standin_row(
        "slow-drip-read-deadline",
        "drip",
        BackendUnavailableError,
        deadline=4.0,
        why="VAULT_TIMEOUT is long, SECRET_READ_TIMEOUT bounds the whole read",
        VAULT_TIMEOUT="30",
        SECRET_READ_TIMEOUT="1.5",
    ),
    _standin_row("hang-after-headers", "hang", BackendUnavailableError, VAULT_TIMEOUT="1"),
    _standin_row("slow-headers", "slow-headers", BackendUnavailableError, VAULT_TIMEOUT="1"),
    _standin_row("cut-body", "cut", BackendUnavailableError),
    _standin_row("non-json-200", "non-json", BackendError),
    _standin_row("non-json-502", "non-json-502", BackendUnavailableError),
    _standin_row("empty-200", "empty", BackendError),
    _standin_row("data-is-a-list", "list", BackendError),
    _standin_row("data-is-a-string", "string-data", BackendError),
    _standin_row("huge-body", "huge", BackendUnavailableError, deadline=8.0),
    _standin_row("deeply-nested-array", "deep", BackendError),
    _standin_row("deeply-nested-object", "deep-object", BackendError),
    _standin_row("400-echoes-token", "echo-token-400", BackendError),
    _standin_row("500-echoes-token", "echo-token-500", BackendUnavailableError),
    _standin_row("403-echoes-token", "echo-token-403", BackendPermissionError),
    _standin_row("418-unexpected-status", "teapot", BackendError),
    _standin_row("200-null-data", "null-data", SecretNotFoundError),
]
