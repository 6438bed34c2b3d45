"""A stand-in Auth0 tenant for tests: our own RSA key, tokens minted with it, and its JWKS served
from a local HTTP server on 127.0.0.1 (Auth0 itself cannot be reached from a test)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.http_standin import LoopbackHTTPServer

__all__ = ["JwksServer", "Tenant", "new_tenant"]


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _parts(body: bytes, size: int) -> Iterator[bytes]:
    return (body[i : i + size] for i in range(0, len(body), size))


class JwksServer:
    """Serves one JWKS document at ``/.well-known/jwks.json`` and counts the requests.

    Set ``failing`` to answer 500, ``delay_seconds`` to wait before answering, or
    ``drip_seconds`` to send the headers at once and then the body one byte at a time.
    """

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.requests = 0
        self.failing = False
        self.delay_seconds = 0.0
        self.drip_seconds = 0.0
        self._count_lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._count_lock:
                    owner.requests += 1
                time.sleep(owner.delay_seconds)
                body = json.dumps(owner.document).encode()
                found = self.path == "/.well-known/jwks.json"
                self.send_response(500 if owner.failing else 200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for part in _parts(body, 1 if owner.drip_seconds else len(body)):
                        self.wfile.write(part)
                        self.wfile.flush()
                        time.sleep(owner.drip_seconds)
                except OSError:
                    return  # the client gave up (what a slow or dripping answer is for)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._http = LoopbackHTTPServer(Handler)

    @property
    def base(self) -> str:
        """The tenant's base address."""
        return f"{self._http.origin}/"

    @property
    def url(self) -> str:
        """The JWKS address."""
        return f"{self.base}.well-known/jwks.json"

    def close(self) -> None:
        """Stop serving."""
        self._http.close()


@dataclass
class Tenant:
    """An Auth0 tenant of our own: domain, audience, signing key and the JWKS server."""

    domain: str
    audience: str
    kid: str
    key: rsa.RSAPrivateKey
    server: JwksServer
    other_key: rsa.RSAPrivateKey = field(default_factory=_private_key)

    @property
    def issuer(self) -> str:
        """The issuer Auth0 writes into tokens."""
        return f"https://{self.domain}/"

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Valid access-token claims, with ``overrides`` applied (None removes a claim)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "auth0|operator",
            "aud": [self.audience, f"{self.issuer}userinfo"],
            "iat": now,
            "exp": now + 600,
            "scope": "openid",
            "permissions": ["secrets:admin"],
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self, *, key: rsa.RSAPrivateKey | None = None, kid: str | None = None, **claims: Any
    ) -> str:
        """An RS256 access token signed with the tenant's key (or ``key``)."""
        return jwt.encode(
            self.claims(**claims),
            key or self.key,
            algorithm="RS256",
            headers={"kid": kid or self.kid},
        )


def new_tenant() -> Tenant:
    """A fresh tenant with its JWKS server started (close ``tenant.server`` when done)."""
    key = _private_key()
    kid = uuid.uuid4().hex[:16]
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public.update(kid=kid, use="sig", alg="RS256")
    server = JwksServer({"keys": [public]})
    return Tenant(
        domain="yosai-test.eu.auth0.com",
        audience="https://api.yosai.test/",
        kid=kid,
        key=key,
        server=server,
    )


def api_trusting(tenant: Tenant, monkeypatch: Any, tmp_path: Any) -> Any:
    """The API (``create_app``) in the test environment, trusting ``tenant``'s tokens."""
    from yosai_secrets.api import create_app

    monkeypatch.setenv("YOSAI_ENV", "test")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(tmp_path / "no-config"))
    monkeypatch.setenv("SECRET_KEY", "k" * 48)
    monkeypatch.setenv("AUTH0_DOMAIN", tenant.domain)
    monkeypatch.setenv("AUTH0_AUDIENCE", tenant.audience)
    monkeypatch.setenv("AUTH0_JWKS_URL", tenant.server.url)
    return create_app({"TESTING": True, "YOSAI_SIGHUP": False, "YOSAI_DASHBOARD": False})
