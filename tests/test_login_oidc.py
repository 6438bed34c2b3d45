"""The dashboard's Auth0 login (Authlib, OIDC discovery, PKCE) against a stand-in provider.

Auth0 cannot run here: :mod:`tests.oidc_provider` is a local OpenID Connect provider on
127.0.0.1 playing the tenant (discovery, JWKS, authorize, token with a PKCE check). The browser's
part is played by the Flask test client and one plain HTTP request to the provider's authorize
endpoint; the app talks to the provider over real HTTP.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.oidc_provider import OidcProvider, s256
from yosai_secrets.api import create_app

CLIENT_ID = "yosai-dashboard-client"
DISCOVERY = "/.well-known/openid-configuration"
LAYOUT = "/dashboard/_dash-layout"


@pytest.fixture(scope="module")
def standin() -> Iterator[OidcProvider]:
    """One stand-in provider for the module (its keys take a moment to make)."""
    made = OidcProvider(client_id=CLIENT_ID, client_secret="replaced-per-test")
    yield made
    made.close()


@pytest.fixture
def provider(standin: OidcProvider, canary: str) -> OidcProvider:
    """The stand-in, behaving, knowing this test's client secret."""
    standin.client_secret = f"{canary}-client-secret"
    standin.id_token_claims = {}
    standin.id_token_headers = {}
    standin.sign_with_other_key = False
    standin.id_token_override = None
    standin.discovery_failing = False
    return standin


@pytest.fixture
def app(provider: OidcProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Flask:
    """The API with its posture page, outside development, with the Auth0 client configured."""
    monkeypatch.setenv("YOSAI_ENV", "test")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(tmp_path / "no-config"))
    monkeypatch.setenv("SECRET_KEY", "k" * 48)
    monkeypatch.setenv("AUTH0_DOMAIN", provider.domain)
    monkeypatch.setenv("AUTH0_AUDIENCE", "https://api.yosai.test/")
    monkeypatch.setenv("AUTH0_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", provider.client_secret)
    monkeypatch.setenv("AUTH0_JWKS_URL", provider.jwks_url)
    return create_app({"TESTING": True, "YOSAI_SIGHUP": False})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """The browser: a test client keeping the session cookie."""
    return app.test_client()


def _start(client: FlaskClient, provider: OidcProvider, next_path: str = "/dashboard/") -> str:
    """GET /login; check it goes to the discovered authorize endpoint; return that address."""
    response = client.get("/login", query_string={"next": next_path})
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(f"{provider.base}oidc/authorize?")
    return location


def _authorize(location: str) -> dict[str, str]:
    """The browser at the provider: follow its redirect back; return the callback's query."""
    parts = urllib.parse.urlsplit(location)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        response = connection.getresponse()
        response.read()
        assert response.status == 302
        back = urllib.parse.urlsplit(response.headers["Location"])
    finally:
        connection.close()
    assert f"{back.scheme}://{back.netloc}{back.path}" == "http://localhost/callback"
    return {k: v[0] for k, v in urllib.parse.parse_qs(back.query).items()}


def _login(client: FlaskClient, provider: OidcProvider, next_path: str = "/dashboard/") -> Any:
    """A whole login; return the callback's response."""
    back = _authorize(_start(client, provider, next_path))
    return client.get("/callback", query_string=back)


def _leaks(provider: OidcProvider) -> list[str]:
    """What must never be shown: codes, the client secret, tokens, PKCE verifiers."""
    verifiers = [f["code_verifier"] for f in provider.token_forms if f.get("code_verifier")]
    return [
        provider.client_secret,
        *provider.issued_codes,
        *provider.issued_id_tokens,
        *provider.issued_access_tokens,
        *verifiers,
    ]


def _assert_refused(
    response: Any, client: FlaskClient, provider: OidcProvider, logs: pytest.LogCaptureFixture
) -> None:
    """A bare 401, no session, and no code, secret or token in the page, headers or logs."""
    assert response.status_code == 401
    assert response.get_json() == {"error": "unauthorized"}
    shown = response.get_data(as_text=True) + json.dumps(dict(response.headers)) + logs.text
    for value in _leaks(provider):
        assert value not in shown
    assert client.get(LAYOUT).status_code == 401


def test_full_login_with_discovery_and_pkce(
    client: FlaskClient, provider: OidcProvider, canary: str
) -> None:
    """/dashboard/ -> /login -> discovered authorize -> /callback (PKCE, ID token) -> page."""
    page = client.get("/dashboard/", headers={"Accept": "text/html"})
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login?next=")
    back = _authorize(_start(client, provider))
    asked = provider.authorize_queries[-1]
    assert asked["client_id"] == CLIENT_ID
    assert asked["response_type"] == "code"
    assert asked["redirect_uri"] == "http://localhost/callback"
    assert asked["code_challenge_method"] == "S256"
    assert "openid" in asked["scope"].split()
    assert asked["state"] and asked["nonce"]
    assert canary not in json.dumps(asked)
    done = client.get("/callback", query_string=back)
    assert done.status_code == 302
    assert done.headers["Location"] == "/dashboard/"
    form = provider.token_forms[-1]
    assert s256(form["code_verifier"]) == asked["code_challenge"]
    assert form["client_secret"] == provider.client_secret
    assert not provider.token_refusals
    assert client.get(LAYOUT).status_code == 200
    out = client.get("/logout")
    assert out.headers["Location"].startswith(f"{provider.base}v2/logout?")
    assert client.get(LAYOUT).status_code == 401


def test_wrong_state_is_refused_before_any_token_request(
    client: FlaskClient, provider: OidcProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback whose state is not the login's is refused; the code is never exchanged."""
    back = _authorize(_start(client, provider))
    forms = len(provider.token_forms)
    with caplog.at_level("INFO"):
        response = client.get("/callback", query_string={**back, "state": "forged-state"})
    _assert_refused(response, client, provider, caplog)
    assert len(provider.token_forms) == forms
    assert "MismatchingStateError" in caplog.text


def test_a_replayed_callback_is_refused(
    client: FlaskClient, provider: OidcProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """The same code and state a second time (login CSRF, a leaked URL) are refused."""
    back = _authorize(_start(client, provider))
    assert client.get("/callback", query_string=back).status_code == 302
    client.get("/logout")
    with caplog.at_level("INFO"):
        response = client.get("/callback", query_string=back)
    _assert_refused(response, client, provider, caplog)


def test_callback_without_a_login_in_progress_is_refused(
    client: FlaskClient, provider: OidcProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback the browser did not start is refused."""
    with caplog.at_level("INFO"):
        response = client.get("/callback", query_string={"code": "c", "state": "s"})
    _assert_refused(response, client, provider, caplog)


@pytest.mark.parametrize("case", ["another nonce", "no nonce", "replayed ID token"])
def test_a_mismatched_or_replayed_nonce_is_refused(
    client: FlaskClient, provider: OidcProvider, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    """An ID token not minted for this login's nonce (another, none, an old one) is refused."""
    if case == "replayed ID token":
        assert _login(client, provider).status_code == 302
        provider.id_token_override = provider.issued_id_tokens[-1]
        client.get("/logout")
    else:
        provider.id_token_claims = {"nonce": "another-login" if case == "another nonce" else None}
    with caplog.at_level("INFO"):
        response = _login(client, provider)
    _assert_refused(response, client, provider, caplog)
    assert "nonce" in caplog.text


@pytest.mark.parametrize("tamper", ["wrong verifier", "no verifier"])
def test_the_provider_refuses_a_code_without_the_right_verifier(
    client: FlaskClient, provider: OidcProvider, caplog: pytest.LogCaptureFixture, tamper: str
) -> None:
    """The app sends the PKCE verifier: change or drop it and the provider refuses the code."""
    back = _authorize(_start(client, provider))
    with client.session_transaction() as session:
        key = next(k for k in session if k.startswith("_state_auth0_"))
        pending = session[key]
        if tamper == "wrong verifier":
            pending["data"]["code_verifier"] = "x" * 50
        else:
            del pending["data"]["code_verifier"]
        session[key] = pending
    with caplog.at_level("INFO"):
        response = client.get("/callback", query_string=back)
    _assert_refused(response, client, provider, caplog)
    expected = "does not match" if tamper == "wrong verifier" else "no PKCE code_verifier"
    assert expected in provider.token_refusals[-1]


def test_a_bare_token_request_without_pkce_fails_at_the_provider(
    client: FlaskClient, provider: OidcProvider
) -> None:
    """The stand-in really checks PKCE: a correct request but for the verifier gets 400."""
    back = _authorize(_start(client, provider))
    form = {
        "grant_type": "authorization_code",
        "code": back["code"],
        "client_id": CLIENT_ID,
        "client_secret": provider.client_secret,
        "redirect_uri": "http://localhost/callback",
    }
    request = urllib.request.Request(  # noqa: S310 - the local stand-in
        f"{provider.base}oidc/token", data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310 - the local stand-in
    refused.value.close()
    assert refused.value.code == 400
    assert provider.token_refusals[-1] == "no PKCE code_verifier"


@pytest.mark.parametrize(
    "case",
    [
        "signed by another key",
        "unknown key id",
        "wrong audience",
        "audience list without the client",
        "wrong issuer",
        "expired",
        "HS256",
        "no subject",
    ],
)
def test_a_bad_id_token_is_refused(
    client: FlaskClient, provider: OidcProvider, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    """A forged, foreign, mis-addressed or expired ID token ends the login in a bare 401."""
    if case == "signed by another key":
        provider.sign_with_other_key = True
    elif case == "unknown key id":
        provider.id_token_headers = {"kid": "not-in-the-jwks"}
    elif case == "wrong audience":
        provider.id_token_claims = {"aud": "another-client"}
    elif case == "audience list without the client":
        # azp names our client, so only the audience check can refuse it.
        provider.id_token_claims = {"aud": ["another-client", "a-third"], "azp": CLIENT_ID}
    elif case == "wrong issuer":
        provider.id_token_claims = {"iss": "https://evil.example/"}
    elif case == "expired":
        provider.id_token_claims = {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}
    elif case == "HS256":
        provider.id_token_headers = {"alg": "HS256"}
    else:
        provider.id_token_claims = {"sub": None}
    with caplog.at_level("INFO"):
        response = _login(client, provider)
    _assert_refused(response, client, provider, caplog)
    assert not provider.token_refusals or provider.token_refusals[-1] != "unknown or used code"


def test_login_returns_only_to_local_paths(client: FlaskClient, provider: OidcProvider) -> None:
    """An open redirect through ?next= is refused: foreign addresses become /dashboard/."""
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        done = _login(client, provider, evil)
        assert done.headers["Location"] == "/dashboard/"
    assert _login(client, provider, "/dashboard/?tab=age").headers["Location"] == (
        "/dashboard/?tab=age"
    )


def test_unreachable_discovery_is_backed_off(
    client: FlaskClient, provider: OidcProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """Discovery failing: 10 logins cost 1 fetch of the document and are refused at once."""
    provider.discovery_failing = True
    before = provider.gets.get(DISCOVERY, 0)
    began = time.monotonic()
    with caplog.at_level("INFO"):
        responses = [client.get("/login") for _ in range(10)]
    assert time.monotonic() - began < 2.0
    assert [r.status_code for r in responses] == [401] * 10
    assert provider.gets.get(DISCOVERY, 0) - before == 1
    assert provider.client_secret not in caplog.text


def test_a_rotated_client_secret_is_used_after_invalidation(
    app: Flask, client: FlaskClient, provider: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After AUTH0_CLIENT_SECRET changes and caches are cleared, logins use the new secret."""
    assert _login(client, provider).status_code == 302
    client.get("/logout")
    provider.client_secret = f"{provider.client_secret}-rotated"
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", provider.client_secret)
    app.extensions["yosai_secrets"].clear_caches()
    assert _login(client, provider).status_code == 302
    assert provider.token_forms[-1]["client_secret"] == provider.client_secret


def test_login_without_a_client_is_refused(
    provider: OidcProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without AUTH0_CLIENT_SECRET the login is refused (bare 401), nothing is fetched."""
    monkeypatch.setenv("YOSAI_ENV", "test")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(tmp_path / "no-config"))
    monkeypatch.setenv("SECRET_KEY", "k" * 48)
    monkeypatch.setenv("AUTH0_DOMAIN", provider.domain)
    monkeypatch.setenv("AUTH0_AUDIENCE", "https://api.yosai.test/")
    monkeypatch.setenv("AUTH0_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AUTH0_JWKS_URL", provider.jwks_url)
    before = dict(provider.gets)
    app = create_app({"TESTING": True, "YOSAI_SIGHUP": False})
    response = app.test_client().get("/login")
    assert response.status_code == 401
    assert response.get_json() == {"error": "unauthorized"}
    assert provider.gets == before


def test_authlib_is_imported_only_when_the_login_is_set_up() -> None:
    """Importing the login module or the API package does not import Authlib (create_app does)."""
    code = (
        "import sys\n"
        "import yosai_secrets.api.login\n"
        "assert 'authlib' not in sys.modules, 'imported at module level'\n"
        "import yosai_secrets.api\n"
        "assert 'authlib' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
