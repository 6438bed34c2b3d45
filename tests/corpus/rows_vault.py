"""Vault answers: refusals, missing and deleted versions, sealed, rate limits, broken servers.

Rows against ``openbao`` (the session's real OpenBao): a bad token, a token without the policy,
404 for a missing path, a soft-deleted version and a destroyed one, a missing field, a real rate
limit quota (429 with ``Retry-After``). ``sealed_openbao``: a real sealed server (503). Rows against
``vault_standin`` get what no OpenBao gives but a proxy or a broken server in front of one can
(``standin.py`` says which): slow drips, hangs, cut bodies, non-JSON, 20 MB, 100,000-deep JSON, a
307 to a dead leader, errors echoing the token. In each, the canary is the token sent, or a value
stored, or both.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from tests.corpus import Ctx, Row, closed_port
from tests.corpus.helpers import get, vault_environ, vault_put
from yosai_secrets.errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionError,
    BackendTLSError,
    BackendUnavailableError,
    ConfigurationError,
    InvalidReferenceError,
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
        act=_read(path=_mode(mode)),
        expect=expect,
        setup=_standin(**more),
        needs=("vault_standin",),
        deadline_seconds=deadline,
        why=why,
    )


def _login_file(variable: str, value: Callable[[Ctx], str], **auth: str) -> Callable[[Ctx], None]:
    """Log in to the stand-in with a credential file (``value`` gives its path)."""

    def setup(ctx: Ctx) -> None:
        standin = ctx.server("vault_standin")
        ctx.environ.update(VAULT_ADDR=standin.addr, VAULT_MAX_RETRIES="0", SECRET_BACKEND="vault")
        ctx.environ.update(auth)
        ctx.environ[variable] = value(ctx)

    return setup


def _fifo(ctx: Ctx) -> str:
    path = ctx.tmp / "credential"
    os.mkfifo(path)
    return str(path)


def _bytes_file(ctx: Ctx) -> str:
    path = ctx.tmp / "credential"
    path.write_bytes(b"\xff\xfe" + ctx.canary.encode())
    return str(path)


def _pem(ctx: Ctx) -> str:
    return f"-----BEGIN PRIVATE KEY-----\n{ctx.canary}\n-----END PRIVATE KEY-----\n"


def _garbage_ca(ctx: Ctx) -> None:
    path = ctx.tmp / "ca.pem"
    path.write_text(f"-----BEGIN CERTIFICATE-----\n{ctx.canary}\n-----END CERTIFICATE-----\n")
    standin = ctx.server("vault_standin")
    ctx.environ.update(
        VAULT_ADDR=standin.addr.replace("http://", "https://"),
        VAULT_TOKEN=ctx.canary,
        VAULT_CACERT=str(path),
        VAULT_MAX_RETRIES="0",
    )


def _standin_token(token: Callable[[Ctx], str]) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        made = token(ctx)
        ctx.plant(made)
        vault_environ(ctx, ctx.server("vault_standin"), token=made, VAULT_MAX_RETRIES="0")

    return setup


def _raw_request(path: str) -> Callable[[Ctx], object]:
    def act(ctx: Ctx) -> object:
        from yosai_secrets.backends.vault import VaultBackend

        backend = VaultBackend.from_environ(ctx.environ)
        ctx.on_close(backend.close)
        return backend.request("GET", path)

    return act


def _https_to_http(ctx: Ctx) -> None:
    plain = ctx.server("vault_standin").addr
    ctx.environ.update(
        VAULT_ADDR=plain.replace("http://", "https://"),
        VAULT_TOKEN=ctx.canary,
        VAULT_MAX_RETRIES="0",
    )


_APPROLE = {"VAULT_ROLE_ID": "corpus-role"}
_K8S = {"VAULT_K8S_ROLE": "corpus-role"}


def _auth_row(id: str, variable: str, value: Callable[[Ctx], str], auth: dict[str, str]) -> Row:
    return Row(
        id=f"vault-{id}",
        act=lambda ctx: get(ctx, "vault:secret/data/app#password"),
        expect=BackendAuthError,
        named=(variable,),
        setup=_login_file(variable, value, **auth),
        needs=("vault_standin",),
        deadline_seconds=3.0,
    )


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
    # -- the stand-in -----------------------------------------------------------------------------
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
    # -- credentials read from files, and TLS material -------------------------------------------
    _auth_row("secret-id-file-dev-zero", "VAULT_SECRET_ID_FILE", lambda ctx: "/dev/zero", _APPROLE),
    _auth_row("secret-id-file-fifo", "VAULT_SECRET_ID_FILE", _fifo, _APPROLE),
    _auth_row(
        "secret-id-file-directory", "VAULT_SECRET_ID_FILE", lambda ctx: str(ctx.tmp), _APPROLE
    ),
    _auth_row("secret-id-file-not-utf8", "VAULT_SECRET_ID_FILE", _bytes_file, _APPROLE),
    _auth_row(
        "secret-id-file-holds-the-secret-id",
        "VAULT_SECRET_ID_FILE",
        lambda ctx: ctx.canary,
        _APPROLE,
    ),
    _auth_row("k8s-token-file-dev-zero", "VAULT_K8S_TOKEN_FILE", lambda ctx: "/dev/zero", _K8S),
    _auth_row("k8s-token-file-fifo", "VAULT_K8S_TOKEN_FILE", _fifo, _K8S),
    Row(
        id="vault-token-with-crlf",
        act=lambda ctx: get(ctx, "vault:secret/data/empty#password"),
        expect=ConfigurationError,
        named=("VAULT_TOKEN",),
        setup=_standin_token(lambda ctx: f"s.x\r\nX-Injected: {ctx.canary}"),
        needs=("vault_standin",),
        why="http.client's own ValueError quotes the whole header value",
    ),
    Row(
        id="vault-token-non-ascii",
        act=lambda ctx: get(ctx, "vault:secret/data/empty#password"),
        expect=ConfigurationError,
        named=("VAULT_TOKEN",),
        setup=_standin_token(lambda ctx: f"s.tökén-{ctx.canary}"),
        needs=("vault_standin",),
    ),
    Row(
        id="vault-login-answers-a-broken-token",
        act=lambda ctx: get(ctx, "vault:secret/data/empty#password"),
        expect=BackendAuthError,
        named=("Vault token",),
        setup=_login_file("VAULT_SECRET_ID", lambda ctx: ctx.canary, **_APPROLE),
        needs=("vault_standin",),
        why="stand-in: a login answer no OpenBao gives (a token with a line break)",
    ),
    Row(
        id="vault-namespace-with-crlf",
        act=lambda ctx: get(ctx, "vault:secret/data/app#password"),
        expect=ConfigurationError,
        named=("VAULT_NAMESPACE",),
        setup=lambda ctx: ctx.environ.update(
            VAULT_ADDR="http://127.0.0.1:8200", VAULT_TOKEN="t", VAULT_NAMESPACE="ns\r\nX-A: 1"
        ),
    ),
    Row(
        id="vault-secrets-path-escaping-its-mount",
        act=lambda ctx: get(ctx, "id"),
        expect=InvalidReferenceError,
        named=("VAULT_SECRETS_PATH",),
        setup=lambda ctx: (
            _stored(ctx),
            ctx.environ.update(
                VAULT_SECRETS_PATH="secret/data/%2e%2e/%2e%2e/auth/token/lookup-self"
            ),
        )[0],
        needs=("openbao",),
    ),
    Row(
        id="vault-addr-credentials-without-scheme",
        act=lambda ctx: get(ctx, "vault:secret/data/app#password"),
        expect=ConfigurationError,
        named=("VAULT_ADDR",),
        setup=lambda ctx: ctx.environ.update(
            VAULT_ADDR=f"admin:{ctx.canary}@127.0.0.1:8200", VAULT_TOKEN="t"
        ),
    ),
    Row(
        id="vault-request-error-echoing-the-token",
        act=_raw_request("secret/data/echo-token-400"),
        expect=BackendError,
        named=("400",),
        setup=_standin(),
        needs=("vault_standin",),
        why="request() (rotation's way to Vault) raises the status error itself: body scrubbed",
    ),
    Row(
        id="vault-proxy-with-credentials",
        act=lambda ctx: get(ctx, "vault:secret/data/app#password"),
        expect=BackendUnavailableError,
        named=("secret/data/app",),
        setup=lambda ctx: vault_environ(
            ctx,
            ctx.server("vault_standin"),
            token="t",
            VAULT_MAX_RETRIES="0",
            HTTP_PROXY=f"http://proxy:{ctx.canary}@127.0.0.1:{closed_port()}",
        ),
        needs=("vault_standin",),
    ),
    Row(
        id="vault-client-key-holds-the-key",
        act=lambda ctx: get(ctx, "vault:secret/data/app#password"),
        expect=ConfigurationError,
        named=("VAULT_CLIENT_KEY",),
        setup=lambda ctx: ctx.environ.update(
            VAULT_ADDR="https://127.0.0.1:8200", VAULT_TOKEN="t", VAULT_CLIENT_KEY=_pem(ctx)
        ),
    ),
    Row(
        id="vault-cacert-holds-the-certificate",
        act=lambda ctx: get(ctx, "vault:secret/data/app#password"),
        expect=ConfigurationError,
        named=("VAULT_CACERT",),
        setup=lambda ctx: ctx.environ.update(
            VAULT_ADDR="https://127.0.0.1:8200", VAULT_TOKEN="t", VAULT_CACERT=_pem(ctx)
        ),
    ),
    Row(
        id="vault-cacert-not-a-certificate",
        act=lambda ctx: get(ctx, "vault:secret/data/app#password"),
        expect=BackendTLSError,
        named=("VAULT_CACERT",),
        setup=_garbage_ca,
        needs=("vault_standin",),
    ),
    Row(
        id="vault-https-to-plain-http",
        act=lambda ctx: get(ctx, "vault:secret/data/app#password"),
        expect=BackendTLSError,
        named=("https://127.0.0.1:",),
        setup=_https_to_http,
        needs=("vault_standin",),
    ),
    Row(
        id="vault-no-token",
        act=lambda ctx: get(ctx, "vault:secret/data/app#password"),
        expect=ConfigurationError,
        named=("VAULT_TOKEN",),
        setup=lambda ctx: ctx.environ.update(VAULT_ADDR="http://127.0.0.1:8200"),
    ),
    Row(
        id="vault-dead-address",
        act=_read(path=lambda ctx: "secret/data/app"),
        expect=BackendUnavailableError,
        setup=lambda ctx: ctx.environ.update(
            VAULT_ADDR=f"http://127.0.0.1:{closed_port()}",
            VAULT_TOKEN=ctx.canary,
            VAULT_MAX_RETRIES="1",
            SECRET_BACKEND="vault",
        ),
    ),
    Row(
        id="vault-addr-with-credentials",
        act=lambda ctx: get(ctx, "vault:secret/data/app#password"),
        expect=ConfigurationError,
        named=("VAULT_ADDR",),
        setup=lambda ctx: ctx.environ.update(
            VAULT_ADDR=f"http://admin:{ctx.canary}@127.0.0.1:{closed_port()}",
            VAULT_TOKEN="t",
            VAULT_MAX_RETRIES="0",
            SECRET_BACKEND="vault",
        ),
        why="issue 12 class 9: user:password@ in VAULT_ADDR is never shown",
    ),
]
