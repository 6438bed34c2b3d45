"""A stand-in OpenID Connect provider for the login tests (Auth0 cannot run here).

A small threaded HTTP server on 127.0.0.1 playing an Auth0 tenant: a discovery document (with
endpoints at paths of its own, so a client that guesses ``/authorize`` instead of reading the
document fails), the JWKS, ``/oidc/authorize`` (redirects back with a code and the state) and
``/oidc/token`` (checks the client, the redirect address and the PKCE ``code_verifier`` against
the ``code_challenge``, then answers an RS256 ID token carrying the login's nonce). Codes are
single-use. Knobs on :class:`OidcProvider` make it misbehave the ways a forged or replayed login
would look.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.http_standin import LoopbackHTTPServer

__all__ = ["OidcProvider"]

DOMAIN = "yosai-oidc.eu.auth0.com"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of ``verifier``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    method: str | None


@dataclass
class OidcProvider:
    """The stand-in tenant: its client, keys, issued codes and the requests it saw."""

    client_id: str
    client_secret: str
    domain: str = DOMAIN
    key: rsa.RSAPrivateKey = field(default_factory=_key)
    other_key: rsa.RSAPrivateKey = field(default_factory=_key)
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    #: Claims to change in the next ID tokens (None removes one).
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    #: Sign ID tokens with ``other_key`` (a forgery), or answer this exact ID token (a replay).
    sign_with_other_key: bool = False
    id_token_override: str | None = None
    id_token_headers: dict[str, Any] = field(default_factory=dict)
    #: Answer 500 to the discovery document.
    discovery_failing: bool = False
    #: What the server saw: authorize queries, token forms, why tokens were refused, GETs by path.
    authorize_queries: list[dict[str, str]] = field(default_factory=list)
    token_forms: list[dict[str, str]] = field(default_factory=list)
    token_refusals: list[str] = field(default_factory=list)
    gets: dict[str, int] = field(default_factory=dict)
    issued_id_tokens: list[str] = field(default_factory=list)
    issued_access_tokens: list[str] = field(default_factory=list)
    issued_codes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self._http = LoopbackHTTPServer(_handler(self))

    @property
    def base(self) -> str:
        """The tenant's address (``http://127.0.0.1:PORT/``)."""
        return f"{self._http.origin}/"

    @property
    def jwks_url(self) -> str:
        """Where the JWKS is (what the API is given as ``AUTH0_JWKS_URL``)."""
        return f"{self.base}.well-known/jwks.json"

    @property
    def issuer(self) -> str:
        """The issuer Auth0 writes into tokens: ``https://DOMAIN/``."""
        return f"https://{self.domain}/"

    def close(self) -> None:
        """Stop serving."""
        self._http.close()

    def discovery(self) -> dict[str, Any]:
        """The ``/.well-known/openid-configuration`` document."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.base}oidc/authorize",
            "token_endpoint": f"{self.base}oidc/token",
            "jwks_uri": self.jwks_url,
            "end_session_endpoint": f"{self.base}oidc/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "scopes_supported": ["openid", "profile"],
        }

    def jwks(self) -> dict[str, Any]:
        """The public half of ``key`` (never ``other_key``)."""
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        public.update(kid=self.kid, use="sig", alg="RS256")
        return {"keys": [public]}

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """Issue a code for the login in ``query``; return (status, where to send the browser)."""
        self.authorize_queries.append(query)
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, ""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(
                client_id=query["client_id"],
                redirect_uri=query.get("redirect_uri", ""),
                nonce=query.get("nonce"),
                challenge=query.get("code_challenge"),
                method=query.get("code_challenge_method"),
            )
        self.issued_codes.append(code)
        back = {"code": code, "state": query.get("state", "")}
        return 302, f"{query.get('redirect_uri', '')}?{urllib.parse.urlencode(back)}"

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer a token request: an ID token, or an OAuth error (the reason is recorded)."""
        self.token_forms.append(form)
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # single use
        refusal = self._refusal(form, grant)
        if refusal is not None:
            self.token_refusals.append(refusal)
            return 400, {"error": "invalid_grant", "error_description": refusal}
        assert grant is not None
        access_token = secrets.token_urlsafe(32)
        id_token = self.id_token_override or self.id_token(grant.nonce)
        self.issued_access_tokens.append(access_token)
        self.issued_id_tokens.append(id_token)
        return 200, {
            "access_token": access_token,
            "id_token": id_token,
            "token_type": "Bearer",
            "expires_in": 86400,
        }

    def _refusal(self, form: dict[str, str], grant: _Grant | None) -> str | None:
        if form.get("grant_type") != "authorization_code" or grant is None:
            return "unknown or used code"
        if form.get("client_id") != grant.client_id or not hmac.compare_digest(
            form.get("client_secret", ""), self.client_secret
        ):
            return "bad client credentials"
        if form.get("redirect_uri") != grant.redirect_uri:
            return "redirect_uri differs from the authorization request"
        if grant.challenge is None:
            return "no PKCE code_challenge was sent"
        verifier = form.get("code_verifier")
        if not verifier:
            return "no PKCE code_verifier"
        expected = s256(verifier) if grant.method == "S256" else verifier
        if not hmac.compare_digest(expected, grant.challenge):
            return "PKCE code_verifier does not match the code_challenge"
        return None

    def id_token(self, nonce: str | None, **overrides: Any) -> str:
        """An ID token for the client carrying ``nonce``, with ``id_token_claims`` applied."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "auth0|operator",
            "aud": self.client_id,
            "iat": now,
            "exp": now + 600,
            "nonce": nonce,
            "name": "Operator",
        }
        claims.update(self.id_token_claims)
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self.other_key if self.sign_with_other_key else self.key
        headers = {"kid": self.kid, **self.id_token_headers}
        algorithm = str(headers.pop("alg", "RS256"))
        signing_key: Any = "x" * 64 if algorithm.startswith("HS") else key
        return jwt.encode(claims, signing_key, algorithm=algorithm, headers=headers)


def _handler(provider: OidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            provider.gets[parts.path] = provider.gets.get(parts.path, 0) + 1
            if parts.path == "/.well-known/openid-configuration":
                if provider.discovery_failing:
                    self._json(500, {"error": "server_error"})
                else:
                    self._json(200, provider.discovery())
            elif parts.path == "/.well-known/jwks.json":
                self._json(200, provider.jwks())
            elif parts.path == "/oidc/authorize":
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
                status, location = provider.authorize(query)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            if urllib.parse.urlsplit(self.path).path != "/oidc/token":
                self._json(404, {"error": "not_found"})
                return
            self._json(*provider.token({k: v[0] for k, v in form.items()}))

        def _json(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
