"""Vault answers from a real OpenBao: refusals, missing and deleted versions, sealed, rate limits.

Rows against ``openbao`` (the session's OpenBao): a bad token, a token without the policy, a
revoked one, 404 for a missing path, a soft-deleted version, a destroyed one, deleted metadata, a
missing field, a real rate limit quota (429 with ``Retry-After``). ``sealed_openbao``: a sealed
server of the corpus's own (503). The canary is a value stored, or the token sent.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.corpus import Ctx, Row
from tests.corpus.helpers import get, vault_environ, vault_put
from yosai_secrets.errors import (
    BackendAuthError,
    BackendPermissionError,
    BackendUnavailableError,
    ConfigurationError,
    SecretNotFoundError,
)


def _name(ctx: Ctx) -> str:
    return f"corpus-{ctx.canary[-8:]}"


def _stored(ctx: Ctx) -> None:
    """The canary stored at the row's path of the real OpenBao; the environment points there."""
    server = ctx.server("openbao")
    vault_put(server, _name(ctx), {"password": ctx.canary, "other": "x"})
    vault_environ(ctx, server, VAULT_MAX_RETRIES="0")


def _read(field: str = "password", path: Callable[[Ctx], str] | None = None) -> Callable[..., str]:
    def act(ctx: Ctx) -> str:
        where = path(ctx) if path else f"secret/data/{_name(ctx)}"
        ctx.name(where)
        return get(ctx, f"vault:{where}#{field}")

    return act


def _bad_token(ctx: Ctx) -> None:
    _stored(ctx)
    ctx.environ["VAULT_TOKEN"] = "s." + ctx.canary  # a token nobody issued, with the canary


def _no_policy(ctx: Ctx) -> None:
    _stored(ctx)
    server = ctx.server("openbao")
    status, body = server.api(
        "POST", "auth/token/create", {"policies": ["default"], "ttl": "10m", "meta": {}}
    )
    assert status == 200
    ctx.environ["VAULT_TOKEN"] = body["auth"]["client_token"]
    ctx.state["token"] = body["auth"]["client_token"]


def _revoked(ctx: Ctx) -> None:
    _no_policy(ctx)
    server = ctx.server("openbao")
    server.api("POST", "auth/token/revoke", {"token": ctx.state["token"]})


def _deleted(ctx: Ctx) -> None:
    _stored(ctx)
    server = ctx.server("openbao")
    assert server.api("DELETE", f"secret/data/{_name(ctx)}")[0] == 204


def _destroyed(ctx: Ctx) -> None:
    _stored(ctx)
    server = ctx.server("openbao")
    assert server.api("PUT", f"secret/destroy/{_name(ctx)}", {"versions": [1]})[0] == 204


def _metadata_deleted(ctx: Ctx) -> None:
    _stored(ctx)
    assert ctx.server("openbao").api("DELETE", f"secret/metadata/{_name(ctx)}")[0] == 204


def _old_version(ctx: Ctx) -> None:
    _stored(ctx)
    vault_put(ctx.server("openbao"), _name(ctx), {"password": "second-version-value"})
    ctx.environ["VAULT_SECRETS_PATH"] = f"secret/data/{_name(ctx)}"


def _rate_limited(ctx: Ctx) -> None:
    """A rate limit quota of one read a second on a mount of the row's own, used up."""
    server = ctx.server("openbao")
    mount = f"rl-{ctx.canary[-8:]}"
    assert server.api("POST", f"sys/mounts/{mount}", {"type": "kv", "options": {"version": "1"}})[
        0
    ] in (200, 204)
    server.api("POST", "sys/quotas/config", {"enable_rate_limit_response_headers": True})
    assert server.api("PUT", f"{mount}/app", {"password": ctx.canary})[0] == 204
    quota = {"path": f"{mount}/", "rate": 1, "interval": "30s"}
    assert server.api("POST", f"sys/quotas/rate-limit/{mount}", quota)[0] == 204
    server.api("GET", f"{mount}/app")  # the one read allowed in this interval
    vault_environ(ctx, server, VAULT_MAX_RETRIES="0")
    ctx.state["mount"] = mount
    ctx.on_close(lambda: server.api("DELETE", f"sys/quotas/rate-limit/{mount}"))


def _sealed(ctx: Ctx) -> None:
    server = ctx.server("sealed_openbao")
    vault_environ(ctx, server, token=ctx.canary, VAULT_MAX_RETRIES="1")


ROWS = [
    # -- the real OpenBao -------------------------------------------------------------------------
    Row(
        id="vault-403-bad-token",
        act=_read(),
        expect=BackendAuthError,
        setup=_bad_token,
        needs=("openbao",),
    ),
    Row(
        id="vault-403-no-policy",
        act=_read(),
        expect=BackendPermissionError,
        setup=_no_policy,
        needs=("openbao",),
    ),
    Row(
        id="vault-403-no-policy-logical-path",
        act=_read(path=lambda ctx: f"secret/{_name(ctx)}"),
        expect=BackendPermissionError,
        setup=_no_policy,
        needs=("openbao",),
        why="the logical KV v2 form asks for the mount first; that question may be refused too",
    ),
    Row(
        id="vault-403-revoked-token",
        act=_read(),
        expect=BackendAuthError,
        setup=_revoked,
        needs=("openbao",),
    ),
    Row(
        id="vault-404-missing-path",
        act=_read(path=lambda ctx: f"secret/data/{_name(ctx)}-absent"),
        expect=SecretNotFoundError,
        setup=_stored,
        needs=("openbao",),
    ),
    Row(
        id="vault-404-missing-kv1-path",
        act=_read(path=lambda ctx: f"kv/{_name(ctx)}-absent"),
        expect=SecretNotFoundError,
        setup=_stored,
        needs=("openbao",),
    ),
    Row(
        id="vault-404-deleted-version",
        act=_read(),
        expect=SecretNotFoundError,
        setup=_deleted,
        needs=("openbao",),
    ),
    Row(
        id="vault-404-destroyed-version",
        act=_read(),
        expect=SecretNotFoundError,
        setup=_destroyed,
        needs=("openbao",),
    ),
    Row(
        id="vault-404-metadata-deleted",
        act=_read(),
        expect=SecretNotFoundError,
        setup=_metadata_deleted,
        needs=("openbao",),
    ),
    Row(
        id="vault-missing-field",
        act=_read(field="pasword"),
        expect=SecretNotFoundError,
        named=("pasword",),
        setup=_stored,
        needs=("openbao",),
    ),
    Row(
        id="vault-bare-name-missing-at-secrets-path",
        act=lambda ctx: get(ctx, "DB_PASSWORD"),
        expect=SecretNotFoundError,
        named=("DB_PASSWORD",),
        setup=_old_version,
        needs=("openbao",),
    ),
    Row(
        id="vault-several-fields-no-field-named",
        act=lambda ctx: get(ctx, f"vault:secret/data/{_name(ctx)}"),
        expect=ConfigurationError,
        named=("other", "password"),
        setup=_stored,
        needs=("openbao",),
        why="a path with two fields and no #field: the message lists field names, no value",
    ),
    Row(
        id="vault-429-rate-limit-quota",
        act=_read(path=lambda ctx: f"{ctx.state['mount']}/app"),
        expect=BackendUnavailableError,
        named=("429",),
        setup=_rate_limited,
        needs=("openbao",),
    ),
    Row(
        id="vault-503-sealed",
        act=_read(path=lambda ctx: "secret/data/app"),
        expect=BackendUnavailableError,
        named=("503", "sealed"),
        setup=_sealed,
        needs=("sealed_openbao",),
    ),
]
