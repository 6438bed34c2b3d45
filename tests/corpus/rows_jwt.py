"""JWTs against the API's verifier (``api/auth.py``): forged, expired, misdirected, oversized.

Each row sends ``Authorization: Bearer <token>`` to ``GET /api/secrets`` of an app built by
``create_app`` that trusts a stand-in Auth0 tenant (``tests/auth0_helpers.py``: our own RSA key,
its JWKS served on loopback; Auth0 itself cannot be reached from a test). The expected answer is
the bare 401 (or 403 for a valid token without the permission). The token is planted: it must
never be echoed in the answer or a log line; the canary rides in a claim.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from tests.auth0_helpers import Tenant
from tests.corpus import Ctx, Response, Row

_LIST = "/api/secrets"


def _app(ctx: Ctx) -> None:
    tenant: Tenant = ctx.server("tenant")
    setenv = ctx.monkeypatch.setenv
    setenv("YOSAI_ENV", "test")
    setenv("YOSAI_CONFIG_DIR", str(ctx.tmp.parent / "no-config"))
    setenv("SECRET_KEY", "k" * 48)
    setenv("AUTH0_DOMAIN", tenant.domain)
    setenv("AUTH0_AUDIENCE", tenant.audience)
    setenv("AUTH0_JWKS_URL", tenant.server.url)
    from yosai_secrets.api import create_app

    app = create_app({"TESTING": True, "YOSAI_SIGHUP": False, "YOSAI_DASHBOARD": False})
    ctx.state["client"] = app.test_client()


def _send(
    token: Callable[[Ctx, Tenant], str],
    scheme: str = "Bearer",
    method: str = "GET",
    path: str = _LIST,
) -> Callable[[Ctx], Response]:
    def act(ctx: Ctx) -> Response:
        made = token(ctx, ctx.server("tenant"))
        ctx.plant(made)
        answer = ctx.state["client"].open(
            path, method=method, headers={"Authorization": f"{scheme} {made}"}
        )
        headers = "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
        return Response(answer.status_code, answer.get_data(as_text=True) + "\n" + headers)

    return act


def _signed(**claims: Any) -> Callable[[Ctx, Tenant], str]:
    """A token the tenant signed (RS256, its kid), with ``claims`` over the valid ones."""
    return lambda ctx, tenant: tenant.token(marker=ctx.canary, **claims)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _alg_none(ctx: Ctx, tenant: Tenant) -> str:
    return jwt.encode(
        tenant.claims(marker=ctx.canary), key=None, algorithm="none", headers={"kid": tenant.kid}
    )


def _hs256_public_key(ctx: Ctx, tenant: Tenant) -> str:
    pem = tenant.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": tenant.kid}
    signing_input = f"{_b64(header)}.{_b64(tenant.claims(marker=ctx.canary))}"
    import hashlib
    import hmac

    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _other_alg(algorithm: str) -> Callable[[Ctx, Tenant], str]:
    def token(ctx: Ctx, tenant: Tenant) -> str:
        return jwt.encode(
            tenant.claims(marker=ctx.canary),
            tenant.key,
            algorithm=algorithm,
            headers={"kid": tenant.kid},
        )

    return token


def _no_kid(ctx: Ctx, tenant: Tenant) -> str:
    return jwt.encode(tenant.claims(marker=ctx.canary), tenant.key, algorithm="RS256")


def _header(**header: Any) -> Callable[[Ctx, Tenant], str]:
    def token(ctx: Ctx, tenant: Tenant) -> str:
        return jwt.encode(
            tenant.claims(marker=ctx.canary), tenant.key, algorithm="RS256", headers=header
        )

    return token


def _huge(ctx: Ctx, tenant: Tenant) -> str:
    return tenant.token(key=tenant.other_key, marker=ctx.canary, padding="x" * 1_000_000)


def _kid_list(ctx: Ctx, tenant: Tenant) -> str:
    _, body, signature = tenant.token(marker=ctx.canary).split(".")
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT', 'kid': [tenant.kid]})}.{body}.{signature}"


def _tampered(ctx: Ctx, tenant: Tenant) -> str:
    head, body, signature = tenant.token(marker=ctx.canary).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["permissions"] = ["secrets:admin", "everything"]
    return f"{head}.{_b64(claims)}.{signature}"


def _row(id: str, token: Callable[[Ctx, Tenant], str], status: int = 401, **kw: Any) -> Row:
    return Row(
        id=f"jwt-{id}",
        act=_send(
            token,
            kw.pop("scheme", "Bearer"),
            kw.pop("method", "GET"),
            kw.pop("path", _LIST),
        ),
        expect=status,
        setup=_app,
        needs=("tenant",),
        **kw,
    )


_NOW = int(time.time())

ROWS = [
    _row("alg-none", _alg_none),
    _row("hs256-with-the-public-key", _hs256_public_key),
    _row("rs512-not-rs256", _other_alg("RS512")),
    _row("ps256-not-rs256", _other_alg("PS256")),
    _row("expired", lambda ctx, t: t.token(marker=ctx.canary, exp=int(time.time()) - 3600)),
    _row("not-yet-valid", lambda ctx, t: t.token(marker=ctx.canary, nbf=int(time.time()) + 3600)),
    _row("wrong-audience", _signed(aud="https://another-api.example.com/")),
    _row("wrong-issuer", _signed(iss="https://evil.example.com/")),
    _row(
        "issuer-without-slash", lambda ctx, t: t.token(marker=ctx.canary, iss=t.issuer.rstrip("/"))
    ),
    _row("no-exp", _signed(exp=None)),
    _row("no-sub", _signed(sub=None)),
    _row("no-aud", _signed(aud=None)),
    _row("missing-kid", _no_kid),
    _row("unknown-kid", lambda ctx, t: t.token(marker=ctx.canary, kid="no-such-key")),
    _row("kid-traversal", lambda ctx, t: t.token(marker=ctx.canary, kid="../../../../etc/passwd")),
    _row("kid-not-a-string", _kid_list),
    _row("kid-empty", _header(kid="")),
    _row("signed-with-another-key", lambda ctx, t: t.token(key=t.other_key, marker=ctx.canary)),
    _row("tampered-claims", _tampered),
    _row("huge-token", _huge, deadline_seconds=5.0),
    _row("garbage", lambda ctx, t: f"not.a.jwt-{ctx.canary}"),
    _row("two-segments", lambda ctx, t: f"{_b64({'alg': 'RS256'})}.{ctx.canary}"),
    _row("header-not-json", lambda ctx, t: f"{ctx.canary}.e30.c2ln"),
    _row("empty-bearer", lambda ctx, t: ""),
    _row("basic-scheme", lambda ctx, t: t.token(marker=ctx.canary), scheme="Basic"),
    _row(
        "missing-permission",
        _signed(permissions=[], scope="openid"),
        status=403,
        method="POST",
        path="/api/secrets/invalidate",
    ),
    _row(
        "permission-only-in-another-claim",
        _signed(permissions=None, scope="openid", roles=["secrets:admin"]),
        status=403,
        method="POST",
        path="/api/secrets/invalidate",
    ),
    _row(
        "forged-token-on-invalidate",
        _alg_none,
        method="POST",
        path="/api/secrets/invalidate",
    ),
]
