"""The Auth0 login in front of the posture page: OpenID Connect, authorization code flow.

``GET /login`` sends the browser to the tenant's ``/authorize`` with a fresh ``state`` and
``nonce`` kept in the (signed) session; ``GET /callback`` checks the state, exchanges the code for
tokens at ``/oauth/token`` with ``AUTH0_CLIENT_ID`` and ``AUTH0_CLIENT_SECRET``, verifies the ID
token (RS256, the tenant's JWKS, issuer, audience = the client id, expiry, nonce) and stores the
user's ``sub`` in the session; ``GET /logout`` clears the session and the tenant's. Every failure
answers a bare 401; the reason is logged, never shown.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Final, cast

from flask import Blueprint, Response, current_app, redirect, request, session, url_for

from ..errors import ConfigurationError
from ..flask import current_extension
from .auth import VERIFIER_KEY, Auth0Verifier, AuthFailure, unauthorized

__all__ = ["SESSION_USER_KEY", "blueprint", "login_url"]

_log = logging.getLogger("yosai_secrets.api.login")

#: Where the signed-in user's Auth0 subject is kept in the session.
SESSION_USER_KEY: Final = "auth0_sub"
_PENDING_KEY: Final = "auth0_login"
_DEFAULT_NEXT: Final = "/dashboard/"
_TOKEN_TIMEOUT_SECONDS: Final = 10.0
_MAX_TOKEN_RESPONSE_BYTES: Final = 256 * 1024

blueprint = Blueprint("yosai_secrets_login", __name__)


def login_url(next_path: str) -> str:
    """The address of the login, coming back to ``next_path`` afterwards."""
    return url_for("yosai_secrets_login.login", next=next_path)


def _client() -> tuple[Auth0Verifier, str, str] | None:
    """The verifier, client id and client secret, or None when the login is not configured."""
    verifier = current_app.extensions.get(VERIFIER_KEY)
    if not isinstance(verifier, Auth0Verifier):
        return None
    ext = current_extension(current_app)
    found = []
    for config_key, name in (
        ("auth0.client_id", "AUTH0_CLIENT_ID"),
        ("auth0.client_secret", "AUTH0_CLIENT_SECRET"),
    ):
        value = ext.config.get(config_key, None) if ext.config is not None else None
        if not isinstance(value, str) or not value.strip():
            try:
                value = ext.manager.get(name, default="")
            except ConfigurationError as exc:
                _log.warning("the Auth0 login cannot read %s: %s", name, exc)
                return None
        if not value.strip():
            return None
        found.append(value.strip())
    return verifier, found[0], found[1]


def _safe_next(raw: str | None) -> str:
    """Only a local path may be returned to: no scheme, no host, no ``//`` or backslash tricks."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return _DEFAULT_NEXT
    parts = urllib.parse.urlsplit(raw)
    return _DEFAULT_NEXT if parts.scheme or parts.netloc else raw


def _redirect_uri() -> str:
    return url_for("yosai_secrets_login.callback", _external=True)


@blueprint.get("/login")
def login() -> Any:
    """Send the browser to the tenant's login page."""
    client = _client()
    if client is None:
        _log.warning("login refused: AUTH0_DOMAIN, AUTH0_AUDIENCE or the client is not set")
        return unauthorized()
    verifier, client_id, _ = client
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session[_PENDING_KEY] = {
        "state": state,
        "nonce": nonce,
        "next": _safe_next(request.args.get("next")),
    }
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": _redirect_uri(),
            "scope": "openid profile",
            "state": state,
            "nonce": nonce,
        }
    )
    return redirect(f"{verifier.tenant_url}authorize?{query}")


@blueprint.get("/callback")
def callback() -> Any:
    """Finish the login: check the state, exchange the code, verify the ID token."""
    pending = session.pop(_PENDING_KEY, None)
    client = _client()
    try:
        if client is None:
            raise AuthFailure("the Auth0 login is not configured")
        if not isinstance(pending, dict):
            raise AuthFailure("callback without a login in progress")
        given = request.args.get("state", "")
        if not hmac.compare_digest(given.encode(), str(pending.get("state", "")).encode()):
            raise AuthFailure("callback state does not match the login")
        if request.args.get("error"):
            raise AuthFailure(f"the tenant refused the login: {request.args['error']!r}")
        code = request.args.get("code", "")
        if not code:
            raise AuthFailure("callback without a code")
        verifier, client_id, client_secret = client
        tokens = _exchange(verifier, client_id, client_secret, code)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise AuthFailure("the token response holds no ID token")
        claims = verifier.decode(id_token, audience=client_id, nonce=str(pending.get("nonce")))
    except AuthFailure as exc:
        _log.info("login refused from %s: %s", request.remote_addr, exc.reason)
        return unauthorized()
    session.clear()
    session[SESSION_USER_KEY] = str(claims["sub"])
    return redirect(_safe_next(str(pending.get("next"))))


@blueprint.get("/logout")
def logout() -> Response:
    """Forget the user here and at the tenant."""
    session.clear()
    client = _client()
    if client is None:
        return cast(Response, redirect(_DEFAULT_NEXT))
    verifier, client_id, _ = client
    back = url_for("yosai_secrets_login.login", _external=True)
    query = urllib.parse.urlencode({"client_id": client_id, "returnTo": back})
    return cast(Response, redirect(f"{verifier.tenant_url}v2/logout?{query}"))


def _exchange(
    verifier: Auth0Verifier, client_id: str, client_secret: str, code: str
) -> Mapping[str, Any]:
    """POST the code to the tenant's token endpoint; return its JSON answer.

    Raises:
        AuthFailure: the endpoint refused or could not be reached (the reason names no secret).
    """
    url = f"{verifier.tenant_url}oauth/token"
    body = urllib.parse.urlencode(
        {
            "grant_type": "authorization_code",
            "client_id": client_id,
            "client_secret": client_secret,
            "code": code,
            "redirect_uri": _redirect_uri(),
        }
    ).encode()
    req = urllib.request.Request(  # noqa: S310 - the tenant's https address (tests: loopback)
        url,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=_TOKEN_TIMEOUT_SECONDS) as response:  # noqa: S310
            raw = response.read(_MAX_TOKEN_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise AuthFailure(f"the token endpoint answered {exc.code}") from None
    except OSError as exc:
        raise AuthFailure(f"the token endpoint cannot be reached: {type(exc).__name__}") from None
    try:
        data = json.loads(raw) if len(raw) <= _MAX_TOKEN_RESPONSE_BYTES else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise AuthFailure("the token endpoint's answer is not a JSON object")
    return data
