"""Vault settings and credentials: files to log in with, TLS material, tokens, addresses.

An AppRole secret id or a Kubernetes token file that is ``/dev/zero``, a FIFO, a directory, not
UTF-8 or the secret itself; a token or namespace no HTTP header can carry; ``VAULT_SECRETS_PATH``
climbing out of its mount; ``VAULT_ADDR`` with credentials (with a scheme or without); a client key
or CA certificate given as content instead of a path; TLS to a plain HTTP server; a dead address;
a proxy URL with credentials. Rows that need a server use the stand-in (logins it answers are
what a broken server could send) or the real OpenBao.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from tests.corpus import Ctx, Row, closed_port
from tests.corpus.helpers import get, vault_environ, vault_put, vault_read
from yosai_secrets.errors import (
    BackendAuthError,
    BackendError,
    BackendTLSError,
    BackendUnavailableError,
    ConfigurationError,
    InvalidReferenceError,
)


def _stored(ctx: Ctx) -> None:
    """The canary stored on the real OpenBao; the environment points there."""
    server = ctx.server("openbao")
    vault_put(server, f"corpus-{ctx.canary[-8:]}", {"password": ctx.canary})
    vault_environ(ctx, server, VAULT_MAX_RETRIES="0")


def _standin(ctx: Ctx) -> None:
    vault_environ(ctx, ctx.server("vault_standin"), token=ctx.canary, VAULT_MAX_RETRIES="0")


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
        setup=_standin,
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
        act=vault_read(lambda ctx: "secret/data/app"),
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
