"""The Auth0 login in front of the posture page: OpenID Connect with Authlib's Flask client.

``GET /login`` reads the tenant's discovery document (``https://AUTH0_DOMAIN/.well-known/
openid-configuration``) and sends the browser to its authorization endpoint: authorization code
flow with PKCE (S256), a fresh ``state`` and ``nonce`` kept in the (signed) session by Authlib.
``GET /callback`` checks the state, exchanges the code (with the PKCE verifier,
``AUTH0_CLIENT_ID`` and ``AUTH0_CLIENT_SECRET``) at the discovered token endpoint, and checks the
ID token: RS256, signed by a key of the discovered JWKS, issued by ``https://AUTH0_DOMAIN/`` for
the client id, not expired, carrying the login's nonce. The user's ``sub`` is then stored in the
session. ``GET /logout`` clears the session and the tenant's. Every failure answers a bare 401;
the reason is logged, never shown.

The discovery document is fetched once for every concurrent login, by a deadline, and a failed
fetch is not retried for a back-off period (logins are refused at once meanwhile); it is read
again after the extension's caches are cleared (SIGHUP), or when the client id or secret changes
(a rotation). Authlib is imported when this blueprint is registered on an app, not before.

The tenant's address follows the API's JWKS address: tests that set ``YOSAI_JWKS_URL`` (or
``AUTH0_JWKS_URL``) to a local stand-in get its discovery document too.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Final, cast

from flask import Blueprint, Flask, Response, current_app, redirect, request, session, url_for
from flask.blueprints import BlueprintSetupState

from ..errors import ConfigurationError, MissingDependencyError
from ..flask import current_extension
from .auth import VERIFIER_KEY, Auth0Verifier, AuthFailure, unauthorized
from .fetch import FetchGate, Unavailable

__all__ = ["SESSION_USER_KEY", "blueprint", "login_url"]

_log = logging.getLogger("yosai_secrets.api.login")

#: Where the signed-in user's Auth0 subject is kept in the session.
SESSION_USER_KEY: Final = "auth0_sub"
_PENDING_KEY: Final = "auth0_login"
_DEFAULT_NEXT: Final = "/dashboard/"
_CLIENT_NAME: Final = "auth0"
_LOGIN_KEY: Final = "yosai_secrets.login"
_DISCOVERY_PATH: Final = ".well-known/openid-configuration"
_HTTP_TIMEOUT_SECONDS: Final = 10.0
_DISCOVERY_DEADLINE_SECONDS: Final = 5.0

blueprint = Blueprint("yosai_secrets_login", __name__)


def login_url(next_path: str) -> str:
    """The address of the login, coming back to ``next_path`` afterwards."""
    return url_for("yosai_secrets_login.login", next=next_path)


@dataclass(frozen=True, slots=True)
class _Credentials:
    verifier: Auth0Verifier
    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"_Credentials(client_id={self.client_id!r}, client_secret=***)"


class _Provider:
    """Authlib's client for one tenant and one client id/secret, and its discovery gate."""

    def __init__(self, oauth_class: Any, app: Flask, credentials: _Credentials) -> None:
        self.credentials = credentials
        metadata_url = f"{credentials.verifier.tenant_url}{_DISCOVERY_PATH}"
        oauth = oauth_class(app)
        self.client = oauth.register(
            _CLIENT_NAME,
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
            server_metadata_url=metadata_url,
            # Explicit, so that no AUTH0_* key of the app's config can redirect the flow.
            authorize_url=None,
            access_token_url=None,
            api_base_url=None,
            client_kwargs={
                "scope": "openid profile",
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": "client_secret_post",
                "default_timeout": _HTTP_TIMEOUT_SECONDS,
            },
        )
        self.discovered = False
        self.gate = FetchGate(
            self._discover,
            name=f"the OpenID configuration from {metadata_url}",
            deadline_seconds=_DISCOVERY_DEADLINE_SECONDS,
        )

    def _discover(self) -> None:
        metadata = self.client.load_server_metadata()
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(metadata.get(field), str):
                # Authlib keeps what it loaded: drop it, or the next try would not fetch.
                metadata.pop("_loaded_at", None)
                raise ValueError(f"the discovery document has no {field}")
        self.discovered = True

    def ready(self) -> None:
        """Have the discovery document (one fetch for all callers, then back-off on failure).

        Raises:
            Unavailable: it cannot be had now.
        """
        if not self.discovered:
            self.gate.run()


class _Login:
    """The app's login state: Authlib's registry class and the current provider."""

    def __init__(self, app: Flask, oauth_class: Any) -> None:
        self._app = app
        self._oauth_class = oauth_class
        self._lock = threading.Lock()
        self._provider: _Provider | None = None

    def provider(self, credentials: _Credentials) -> _Provider:
        """The provider for ``credentials``, built anew when they changed (a rotation)."""
        with self._lock:
            if self._provider is None or self._provider.credentials != credentials:
                self._provider = _Provider(self._oauth_class, self._app, credentials)
            return self._provider

    def clear(self) -> None:
        """Forget the provider: discovery and keys are read again (SIGHUP, invalidation)."""
        with self._lock:
            self._provider = None


@blueprint.record_once
def _setup(state: BlueprintSetupState) -> None:
    """Import Authlib and keep the login's state on the app (once per app)."""
    try:
        from authlib.integrations.flask_client import OAuth
    except ImportError as exc:  # Authlib, or the requests package its Flask client uses
        error = MissingDependencyError(exc.name or "Authlib", "flask", "the Auth0 login")
        _log.warning("the Auth0 login is off: %s", error)
        return
    app = cast(Flask, state.app)
    login = _Login(app, OAuth)
    app.extensions[_LOGIN_KEY] = login
    current_extension(app).on_clear(login.clear)


def _credentials() -> _Credentials | None:
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
    from ..secret import register_secret_value

    register_secret_value(found[1])  # the client secret, never in a log line
    return _Credentials(verifier, found[0], found[1])


def _provider() -> _Provider | None:
    login = current_app.extensions.get(_LOGIN_KEY)
    credentials = _credentials()
    if not isinstance(login, _Login) or credentials is None:
        return None
    return login.provider(credentials)


def _safe_next(raw: str | None) -> str:
    """Only a local path may be returned to: no scheme, no host, no ``//`` or backslash tricks."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return _DEFAULT_NEXT
    parts = urllib.parse.urlsplit(raw)
    return _DEFAULT_NEXT if parts.scheme or parts.netloc else raw


def _redirect_uri() -> str:
    return url_for("yosai_secrets_login.callback", _external=True)


def _forget_pending_logins() -> None:
    """One login in progress per browser: drop Authlib's state of earlier, unfinished ones."""
    prefix = f"_state_{_CLIENT_NAME}_"
    for key in [k for k in session if k.startswith(prefix)]:
        session.pop(key, None)
    session.pop(_PENDING_KEY, None)


@blueprint.get("/login")
def login() -> Any:
    """Send the browser to the tenant's login page."""
    provider = _provider()
    if provider is None:
        _log.warning("login refused: AUTH0_DOMAIN, AUTH0_AUDIENCE or the client is not set")
        return unauthorized()
    try:
        provider.ready()
    except Unavailable as exc:
        _log.warning("login refused: %s", exc)
        return unauthorized()
    _forget_pending_logins()
    session[_PENDING_KEY] = {"next": _safe_next(request.args.get("next"))}
    return provider.client.authorize_redirect(_redirect_uri())


@blueprint.get("/callback")
def callback() -> Any:
    """Finish the login: check the state, exchange the code, verify the ID token."""
    pending = session.pop(_PENDING_KEY, None)
    provider = _provider()
    try:
        if provider is None:
            raise AuthFailure("the Auth0 login is not configured")
        if not isinstance(pending, dict):
            raise AuthFailure("callback without a login in progress")
        if request.args.get("error"):
            raise AuthFailure(f"the tenant refused the login: {request.args['error']!r}")
        provider.ready()
        claims = _finish(provider)
    except Unavailable as exc:
        _log.warning("login refused from %s: %s", request.remote_addr, exc)
        return unauthorized()
    except AuthFailure as exc:
        _log.info("login refused from %s: %s", request.remote_addr, exc.reason)
        return unauthorized()
    session.clear()
    session[SESSION_USER_KEY] = str(claims["sub"])
    return redirect(_safe_next(str(pending.get("next"))))


def _finish(provider: _Provider) -> dict[str, Any]:
    """Exchange the code and check the ID token with Authlib; return the token's claims.

    Raises:
        AuthFailure: any refusal, named for the log only (no code, secret or token in it).
    """
    from authlib.common.errors import AuthlibBaseError
    from joserfc.errors import JoseError
    from requests import RequestException

    credentials = provider.credentials
    try:
        token = provider.client.authorize_access_token(
            claims_options={
                "iss": {"essential": True, "value": credentials.verifier.issuer},
                "aud": {"essential": True, "value": credentials.client_id},
                "sub": {"essential": True},
                "nonce": {"essential": True},
            },
            leeway=int(credentials.verifier.leeway_seconds),
        )
    except AuthlibBaseError as exc:
        # Only the error code: a description comes from the tenant and is not ours to log.
        raise AuthFailure(f"the login was refused: {type(exc).__name__} ({exc.error})") from None
    except JoseError as exc:
        # joserfc's descriptions name a claim or a key, never a value.
        raise AuthFailure(
            f"the ID token was refused: {type(exc).__name__}: {exc.description}"
        ) from None
    except RequestException as exc:
        raise AuthFailure(f"the tenant cannot be reached: {type(exc).__name__}") from None
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise AuthFailure(f"the tenant's answer is unusable: {type(exc).__name__}") from None
    return _checked_claims(token)


def _checked_claims(token: Any) -> dict[str, Any]:
    """The ID token's claims Authlib validated, if the token was RS256 as Auth0 signs them."""
    import jwt

    claims = token.get("userinfo") if isinstance(token, dict) else None
    id_token = token.get("id_token") if isinstance(token, dict) else None
    if not isinstance(claims, dict) or not isinstance(id_token, str):
        raise AuthFailure("the token response holds no ID token")
    try:
        algorithm = jwt.get_unverified_header(id_token).get("alg")
    except jwt.InvalidTokenError:
        raise AuthFailure("the ID token is malformed") from None
    if algorithm != "RS256":
        raise AuthFailure(f"the ID token's algorithm {algorithm!r} is not RS256")
    return dict(claims)


@blueprint.get("/logout")
def logout() -> Response:
    """Forget the user here and at the tenant."""
    session.clear()
    credentials = _credentials()
    if credentials is None:
        return cast(Response, redirect(_DEFAULT_NEXT))
    back = url_for("yosai_secrets_login.login", _external=True)
    query = urllib.parse.urlencode({"client_id": credentials.client_id, "returnTo": back})
    return cast(Response, redirect(f"{credentials.verifier.tenant_url}v2/logout?{query}"))
