"""Auth0 access tokens on the /api/secrets endpoints: every failure is a bare 401 or 403."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.auth0_helpers import Tenant, api_trusting, new_tenant
from yosai_secrets.api import create_app
from yosai_secrets.api.auth import VERIFIER_KEY, AuthFailure, JwksCache, issuer_of
from yosai_secrets.testing import FakeClock

LIST = "/api/secrets"
INVALIDATE = "/api/secrets/invalidate"


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    """One stand-in Auth0 tenant (RSA key and JWKS server) for the module."""
    made = new_tenant()
    yield made
    made.server.close()


@pytest.fixture
def app(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Flask:
    """The API in the test environment, trusting the stand-in tenant."""
    return api_trusting(tenant, monkeypatch, tmp_path)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the API."""
    return app.test_client()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401
    assert response.get_json() == {"error": "unauthorized"}
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="yosai-secrets"'


def test_valid_token_reads_the_posture(client: FlaskClient, tenant: Tenant) -> None:
    """A valid RS256 token for the tenant and audience reads GET /api/secrets."""
    response = client.get(LIST, headers=_bearer(tenant.token()))
    assert response.status_code == 200
    assert response.get_json()["secrets"][0]["name"] == "SECRET_KEY"


def test_audience_may_be_a_single_string(client: FlaskClient, tenant: Tenant) -> None:
    """An ``aud`` claim given as one string (not a list) is accepted too."""
    response = client.get(LIST, headers=_bearer(tenant.token(aud=tenant.audience)))
    assert response.status_code == 200


def _forged_alg_none(tenant: Tenant) -> str:
    return jwt.encode(tenant.claims(), key=None, algorithm="none", headers={"kid": tenant.kid})


def _forged_hs256(tenant: Tenant) -> str:
    # The classic confusion attack: HMAC "signed" with the public key's text.
    return jwt.encode(tenant.claims(), "x" * 64, algorithm="HS256", headers={"kid": tenant.kid})


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("no token", lambda t: None),
        ("not a JWT", lambda t: "not.a.jwt"),
        ("bad signature", lambda t: t.token(key=t.other_key)),
        ("unknown key id", lambda t: t.token(kid="unknown-kid")),
        ("wrong audience", lambda t: t.token(aud="https://another.api/")),
        ("wrong issuer", lambda t: t.token(iss="https://evil.example/")),
        ("expired", lambda t: t.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)),
        ("no expiry", lambda t: t.token(exp=None)),
        ("alg none", _forged_alg_none),
        ("alg HS256", _forged_hs256),
    ],
)
def test_every_bad_token_gets_the_same_bare_401(
    client: FlaskClient, tenant: Tenant, case: str, make: Any
) -> None:
    """Missing, forged, foreign, expired or mis-addressed tokens all get one generic 401."""
    token = make(tenant)
    headers = _bearer(token) if token else {}
    _assert_unauthorized(client.get(LIST, headers=headers))
    _assert_unauthorized(client.post(INVALIDATE, headers=headers))


def test_wrong_scheme_is_unauthorized(client: FlaskClient, tenant: Tenant) -> None:
    """A token sent with another scheme than Bearer is not accepted."""
    _assert_unauthorized(client.get(LIST, headers={"Authorization": f"Basic {tenant.token()}"}))


def test_invalidation_needs_the_admin_permission(client: FlaskClient, tenant: Tenant) -> None:
    """A valid token without secrets:admin may list but not invalidate: a bare 403."""
    token = tenant.token(permissions=["secrets:read"], scope="openid profile")
    assert client.get(LIST, headers=_bearer(token)).status_code == 200
    response = client.post(INVALIDATE, headers=_bearer(token))
    assert response.status_code == 403
    assert response.get_json() == {"error": "forbidden"}


def test_admin_permission_in_permissions_or_scope(client: FlaskClient, tenant: Tenant) -> None:
    """secrets:admin is honoured in the ``permissions`` claim and in ``scope``."""
    by_permissions = tenant.token(permissions=["secrets:admin"])
    by_scope = tenant.token(permissions=None, scope="openid secrets:admin")
    for token in (by_permissions, by_scope):
        response = client.post(INVALIDATE, headers=_bearer(token))
        assert response.status_code == 200, response.get_json()


def test_refusals_are_logged_for_the_server_not_told_to_the_caller(
    client: FlaskClient, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    """Why a token was refused is logged (without the token); the response says nothing."""
    token = tenant.token(aud="https://another.api/")
    with caplog.at_level("INFO", logger="yosai_secrets.api.auth"):
        response = client.get(LIST, headers=_bearer(token))
    assert response.get_json() == {"error": "unauthorized"}
    assert "InvalidAudienceError" in caplog.text
    assert token not in caplog.text


def test_jwks_is_fetched_once_and_cached(client: FlaskClient, tenant: Tenant) -> None:
    """Many requests cost one JWKS fetch; tokens with unknown key ids cannot force refetches."""
    before = tenant.server.requests
    for _ in range(5):
        assert client.get(LIST, headers=_bearer(tenant.token())).status_code == 200
    for n in range(5):
        client.get(LIST, headers=_bearer(tenant.token(kid=f"forged-{n}")))
    assert tenant.server.requests - before == 1


def test_clearing_caches_drops_the_jwks(app: Flask, client: FlaskClient, tenant: Tenant) -> None:
    """After the extension's caches are cleared (SIGHUP, invalidate) the JWKS is fetched again."""
    client.get(LIST, headers=_bearer(tenant.token()))
    before = tenant.server.requests
    app.extensions["yosai_secrets"].clear_caches()
    assert client.get(LIST, headers=_bearer(tenant.token())).status_code == 200
    assert tenant.server.requests - before == 1


def test_without_auth0_settings_everything_is_refused(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without AUTH0_DOMAIN/AUTH0_AUDIENCE the endpoints fail closed: a good token gets 401."""
    monkeypatch.setenv("YOSAI_ENV", "test")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(tmp_path / "no-config"))
    monkeypatch.setenv("SECRET_KEY", "k" * 48)
    monkeypatch.setenv("AUTH0_JWKS_URL", tenant.server.url)
    app = create_app({"TESTING": True, "YOSAI_SIGHUP": False, "YOSAI_DASHBOARD": False})
    assert VERIFIER_KEY not in app.extensions
    _assert_unauthorized(app.test_client().get(LIST, headers=_bearer(tenant.token())))


def test_jwks_address_defaults_to_the_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the test-only override, keys come from https://AUTH0_DOMAIN/.well-known/jwks.json."""
    from yosai_secrets.api.auth import Auth0Verifier

    verifier = Auth0Verifier.create("tenant.eu.auth0.com", "https://api/")
    assert verifier.jwks.url == "https://tenant.eu.auth0.com/.well-known/jwks.json"
    assert verifier.issuer == "https://tenant.eu.auth0.com/"
    assert issuer_of("https://tenant.eu.auth0.com/") == "https://tenant.eu.auth0.com/"


def test_jwks_cache_refetches_after_its_ttl_and_keeps_keys_when_down(tenant: Tenant) -> None:
    """Keys are refetched after the TTL; an unreachable JWKS keeps the keys already known."""
    clock = FakeClock()
    documents = [tenant.server.document]
    calls: list[str] = []

    def fetch(url: str) -> dict[str, Any]:
        calls.append(url)
        if not documents:
            raise OSError("connection refused")
        return documents[0]

    cache = JwksCache("https://t/.well-known/jwks.json", ttl_seconds=600, clock=clock, fetch=fetch)
    assert cache.key_for(tenant.kid) is not None
    clock.advance(100)
    cache.key_for(tenant.kid)
    assert len(calls) == 1
    clock.advance(600)
    documents.clear()
    assert cache.key_for(tenant.kid) is not None  # down: the known key is kept ...
    assert cache.fetches == 2  # ... while the refetch goes on in the background
    with pytest.raises(AuthFailure):
        cache.key_for("other")
    assert len(calls) == 2


def test_no_token_text_in_any_refusal(client: FlaskClient, tenant: Tenant) -> None:
    """A refused token is never echoed back in the body or headers."""
    token = tenant.token(iss="https://evil.example/")
    response = client.get(LIST, headers=_bearer(token))
    assert token not in response.get_data(as_text=True)
    assert all(token not in value for _, value in response.headers.items())
    assert os.environ["SECRET_KEY"] not in response.get_data(as_text=True)


# The Auth0 login in front of the posture page: tests/test_login_oidc.py (OIDC stand-in provider).
