"""Auth0 access tokens: RS256 JWTs checked against the tenant's cached JWKS.

A request is let through when its ``Authorization: Bearer`` token is an RS256 JWT signed by a key
of ``https://AUTH0_DOMAIN/.well-known/jwks.json``, issued by ``https://AUTH0_DOMAIN/`` for the
audience ``AUTH0_AUDIENCE``, not expired, and (where asked) carrying a permission in its
``permissions`` claim or its ``scope``. Every refusal answers a bare ``401 unauthorized`` or
``403 forbidden``: why a token was refused is logged here, never told to the caller.

The JWKS address can be overridden (``app.config["YOSAI_JWKS_URL"]`` or ``AUTH0_JWKS_URL``) for
tests only, which serve their own keys from a local HTTP server.

A machine may be let through one endpoint without Auth0 (:func:`requires_auth_or_token`): cache
invalidation, which a rotation calls, accepts a bearer equal to ``SECRETS_INVALIDATE_TOKEN`` (at
least 32 characters; compared in constant time) when the API has one.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial, wraps
from typing import Any, Final, TypeVar, cast

import jwt
from flask import Response, current_app, g, jsonify, request

from .fetch import FetchGate, Unavailable, get_json

__all__ = [
    "ADMIN_PERMISSION",
    "INVALIDATE_TOKEN_VARIABLE",
    "Auth0Verifier",
    "AuthFailure",
    "JwksCache",
    "forbidden",
    "machine_token_matches",
    "requires_auth",
    "requires_auth_or_token",
    "unauthorized",
]

_log = logging.getLogger("yosai_secrets.api.auth")

#: The permission that allows invalidating caches.
ADMIN_PERMISSION: Final = "secrets:admin"

#: The machine token ``POST /api/secrets/invalidate`` also accepts (a rotation's notification).
INVALIDATE_TOKEN_VARIABLE: Final = "SECRETS_INVALIDATE_TOKEN"  # noqa: S105 (a variable's name)
#: A shorter machine token is ignored (and logged): it could be guessed.
MIN_MACHINE_TOKEN_LENGTH: Final = 32

#: The key of the verifier in ``app.extensions``.
VERIFIER_KEY: Final = "yosai_secrets.auth0"

_JWKS_PATH: Final = ".well-known/jwks.json"
_JWKS_DEADLINE_SECONDS: Final = 5.0

F = TypeVar("F", bound=Callable[..., Any])


class AuthFailure(Exception):
    """A token was refused; ``reason`` is for the server's log only, never the response."""

    def __init__(self, reason: str, *, status: int = 401) -> None:
        self.reason = reason
        self.status = status
        super().__init__(reason)


class JwksCache:
    """The tenant's signing keys, fetched once and kept for ``ttl_seconds``.

    Whatever callers send, the JWKS address sees little traffic and no caller waits long:

    - concurrent callers share one fetch in flight, bounded by ``deadline_seconds`` (never one
      fetch after another);
    - a failed fetch is remembered for ``backoff_seconds`` (up to twice that, jittered): tokens
      are refused at once meanwhile, and the keys already known are kept and used;
    - a token naming an unknown key id makes one refetch (keys rotate), but no more often than
      every ``min_refetch_seconds``, so forged key ids cannot turn this service into a load on
      Auth0;
    - keys past their TTL are still used while the refetch goes on in the background.

    PyJWT's ``PyJWKClient`` is not used: it holds one lock across the fetch (callers queue), a
    failed fetch is retried by the very next caller, and its timeout bounds each socket read,
    not the fetch.

    Args:
        url: the JWKS address.
        ttl_seconds: how long fetched keys are used before being fetched again.
        min_refetch_seconds: the least time between two fetches for unknown key ids.
        backoff_seconds: after a failed fetch, how long (at least) before the next one.
        deadline_seconds: the longest a fetch (and so any caller) may take.
        clock: a monotonic clock in seconds.
        fetch: reads the address and returns the JSON document (default: :func:`.get_json`).
        jitter: returns a number in [0, 1), to spread the back-off (default: random).
    """

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: float = 600.0,
        min_refetch_seconds: float = 30.0,
        backoff_seconds: float = 30.0,
        deadline_seconds: float = _JWKS_DEADLINE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        fetch: Callable[[str], Mapping[str, Any]] | None = None,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        self.url = url
        self.ttl_seconds = ttl_seconds
        self.min_refetch_seconds = min_refetch_seconds
        self._clock = clock
        self._fetch = fetch or partial(get_json, deadline_seconds=deadline_seconds)
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._gate = FetchGate(
            self._refresh,
            name=f"the JWKS from {url}",
            deadline_seconds=deadline_seconds,
            backoff_seconds=backoff_seconds,
            clock=clock,
            jitter=jitter,
        )

    @property
    def fetches(self) -> int:
        """How many fetches were started."""
        return self._gate.fetches

    def clear(self) -> None:
        """Forget the keys and any failure; the next token fetches them again."""
        with self._lock:
            self._keys = {}
            self._fetched_at = float("-inf")
        self._gate.reset()

    def key_for(self, kid: str) -> Any:
        """Return the public key with id ``kid``.

        Raises:
            AuthFailure: no such key, or the JWKS cannot be fetched now.
        """
        with self._lock:
            key = self._keys.get(kid)
            fresh = self._clock() - self._fetched_at < self.ttl_seconds
        if key is not None:
            if not fresh:
                self._gate.run(wait=False)  # refresh in the background, use the known key now
            return key
        try:
            # Fresh keys without this id: refetch, unless one started recently (forged ids).
            self._gate.run(not_within_seconds=self.min_refetch_seconds if fresh else 0.0)
        except Unavailable as exc:
            raise AuthFailure(f"the JWKS is unavailable: {exc}") from None
        with self._lock:
            key = self._keys.get(kid)
        if key is None:
            raise AuthFailure(f"no key with id {kid!r} in the JWKS")
        return key

    def _refresh(self) -> None:
        """Fetch and store the keys (in the gate's thread); raise on any failure."""
        keyset = jwt.PyJWKSet.from_dict(dict(self._fetch(self.url)))
        keys = {k.key_id: k.key for k in keyset.keys if k.key_id}
        with self._lock:
            self._keys = keys
            self._fetched_at = self._clock()


def issuer_of(domain: str) -> str:
    """``tenant.eu.auth0.com`` (or ``https://tenant.eu.auth0.com/``) -> the issuer URL."""
    host = domain.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    return f"https://{host}/"


@dataclass(frozen=True, slots=True)
class Auth0Verifier:
    """Checks Auth0 access tokens for one tenant and audience.

    Args:
        domain: ``AUTH0_DOMAIN`` (a host name, e.g. ``tenant.eu.auth0.com``).
        audience: ``AUTH0_AUDIENCE``, the API identifier tokens must be issued for.
        jwks: the key cache (default: the tenant's ``/.well-known/jwks.json``).
        leeway_seconds: clock skew tolerated on ``exp``/``nbf``/``iat``.
    """

    domain: str
    audience: str
    jwks: JwksCache
    leeway_seconds: float = 10.0
    tenant_url: str = ""

    @classmethod
    def create(cls, domain: str, audience: str, jwks_url: str | None = None) -> Auth0Verifier:
        """Build a verifier with the tenant's JWKS (or ``jwks_url``, for tests only).

        The tenant's other endpoints (``authorize``, ``oauth/token``, ``v2/logout``) are found
        next to the JWKS: under ``https://AUTH0_DOMAIN/``, or under the test server.
        """
        url = jwks_url or f"{issuer_of(domain)}{_JWKS_PATH}"
        base = url[: -len(_JWKS_PATH)] if url.endswith(_JWKS_PATH) else issuer_of(domain)
        return cls(domain=domain, audience=audience, jwks=JwksCache(url), tenant_url=base)

    @property
    def issuer(self) -> str:
        """The ``iss`` every token must carry."""
        return issuer_of(self.domain)

    def verify(self, token: str, permissions: Sequence[str] = ()) -> dict[str, Any]:
        """Return the token's claims if it is valid and carries every one of ``permissions``.

        Raises:
            AuthFailure: 401 for an invalid token, 403 for a missing permission.
        """
        claims = self.decode(token, audience=self.audience)
        granted = _permissions_of(claims)
        missing = [p for p in permissions if p not in granted]
        if missing:
            raise AuthFailure(
                f"subject {claims.get('sub')!r} lacks permission(s) {', '.join(missing)}",
                status=403,
            )
        return claims

    def decode(self, token: str, *, audience: str, nonce: str | None = None) -> dict[str, Any]:
        """Check an RS256 token of this tenant for ``audience`` (and ``nonce``); return its claims.

        Raises:
            AuthFailure: the token is not valid.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthFailure(f"malformed token: {exc}") from None
        if header.get("alg") != "RS256":
            raise AuthFailure(f"token algorithm {header.get('alg')!r} is not RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthFailure("token names no key id")
        key = self.jwks.key_for(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise AuthFailure(f"token refused: {type(exc).__name__}: {exc}") from None
        if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise AuthFailure("ID token nonce does not match the login")
        return claims


def _permissions_of(claims: Mapping[str, Any]) -> set[str]:
    granted: set[str] = set()
    listed = claims.get("permissions")
    if isinstance(listed, list):
        granted.update(p for p in listed if isinstance(p, str))
    scope = claims.get("scope")
    if isinstance(scope, str):
        granted.update(scope.split())
    return granted


def unauthorized() -> Response:
    """The one 401 answer: no hint of what was wrong with the credentials."""
    response = jsonify(error="unauthorized")
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="yosai-secrets"'
    return response


def forbidden() -> Response:
    """The one 403 answer."""
    response = jsonify(error="forbidden")
    response.status_code = 403
    return response


def bearer_token() -> str | None:
    """The request's bearer token, if it sent one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(permissions: Sequence[str] = ()) -> Response | None:
    """Check the current request's token; return the refusal to send, or None to go on.

    On success the claims are in ``flask.g.auth0_claims``.
    """
    verifier = current_app.extensions.get(VERIFIER_KEY)
    token = bearer_token()
    try:
        if not isinstance(verifier, Auth0Verifier):
            # Fail closed: without AUTH0_DOMAIN/AUTH0_AUDIENCE no token can be checked.
            raise AuthFailure("AUTH0_DOMAIN or AUTH0_AUDIENCE is not configured")
        if token is None:
            raise AuthFailure("no bearer token")
        g.auth0_claims = verifier.verify(token, permissions)
    except AuthFailure as exc:
        _log.info(
            "refused %s %s from %s: %s",
            request.method,
            request.path,
            request.remote_addr,
            exc.reason,
        )
        return forbidden() if exc.status == 403 else unauthorized()
    return None


def requires_auth(*permissions: str) -> Callable[[F], F]:
    """Decorate a view: it runs only for a valid Auth0 token carrying ``permissions``."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            refusal = authenticate(permissions)
            if refusal is not None:
                return refusal
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def machine_token_matches(variable: str) -> bool:
    """Whether the request's bearer token equals the machine token in ``variable``.

    The token is the app's ``config[variable]``, else the environment variable; unset (or
    shorter than 32 characters, which is logged) means no machine may use it.
    """
    expected = str(current_app.config.get(variable) or os.environ.get(variable, "")).strip()
    if not expected:
        return False
    from ..secret import register_secret_value

    register_secret_value(expected)  # never in a log line, whatever logs the request
    if len(expected) < MIN_MACHINE_TOKEN_LENGTH:
        _log.warning(
            "%s is shorter than %d characters: ignored", variable, MIN_MACHINE_TOKEN_LENGTH
        )
        return False
    token = bearer_token()
    if token is None:
        return False
    return hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))


def requires_auth_or_token(permission: str, variable: str) -> Callable[[F], F]:
    """Decorate a view: it runs for an Auth0 token with ``permission``, or the machine token."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if machine_token_matches(variable):
                _log.info(
                    "%s %s from %s: machine token (%s)",
                    request.method,
                    request.path,
                    request.remote_addr,
                    variable,
                )
                g.auth0_claims = {"sub": f"machine:{variable}"}
                return view(*args, **kwargs)
            refusal = authenticate((permission,))
            if refusal is not None:
                return refusal
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate
