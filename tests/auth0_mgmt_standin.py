"""A stand-in for the Auth0 Management API on 127.0.0.1, because Auth0 cannot run here.

It answers the two calls an incident makes, as Auth0 documents them: ``POST /oauth/token`` with
client credentials for the Management API's audience, and
``POST /api/v2/clients/{id}/rotate-secret`` with that token as a bearer, which answers the client
with a new ``client_secret``. It checks the credentials, the audience and the bearer token, and
answers refusals with Auth0's error bodies.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.http_standin import LoopbackHTTPServer

__all__ = ["Auth0MgmtStandin"]


@dataclass
class Auth0MgmtStandin:
    """One tenant's Management API: its M2M credentials, one application, the secrets issued."""

    domain: str = "yosai-test.eu.auth0.com"
    mgmt_client_id: str = "mgmt-client"
    mgmt_client_secret: str = field(default_factory=lambda: "mgmt-" + secrets.token_hex(16))
    client_id: str = "yosai-app"
    #: Answer rotate-secret with this status instead (403: the token lacks the scope).
    rotate_status: int | None = None
    #: Answer every call with a 307 to this address instead (a client must not follow it).
    redirect_to: str | None = None
    #: Every new client secret handed out, in order.
    new_secrets: list[str] = field(default_factory=list)
    #: (path, whether the call was authorised) of every POST.
    calls: list[tuple[str, bool]] = field(default_factory=list)
    access_token: str = field(default_factory=lambda: "mgmt-token-" + secrets.token_hex(16))

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {}
                status, answer = owner.answer(self.path, body, self.headers.get("Authorization"))
                data = json.dumps(answer).encode()
                self.send_response(status)
                if owner.redirect_to is not None:
                    self.send_header("Location", owner.redirect_to + self.path)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._http = LoopbackHTTPServer(Handler)

    @property
    def base_url(self) -> str:
        """The address to give as ``AUTH0_MGMT_BASE_URL``."""
        return self._http.origin

    def environ(self, **overrides: str) -> dict[str, str]:
        """The variables that point the incident at this tenant."""
        return {
            "AUTH0_DOMAIN": self.domain,
            "AUTH0_MGMT_CLIENT_ID": self.mgmt_client_id,
            "AUTH0_MGMT_CLIENT_SECRET": self.mgmt_client_secret,
            "AUTH0_CLIENT_ID": self.client_id,
            "AUTH0_MGMT_BASE_URL": self.base_url,
            **overrides,
        }

    def answer(
        self, path: str, body: dict[str, Any], authorization: str | None
    ) -> tuple[int, dict[str, Any]]:
        """What Auth0 answers to a POST of ``body`` to ``path``."""
        if self.redirect_to is not None:
            return 307, {}
        if path == "/oauth/token":
            ok = (
                body.get("grant_type") == "client_credentials"
                and body.get("client_id") == self.mgmt_client_id
                and body.get("client_secret") == self.mgmt_client_secret
                and body.get("audience") == f"https://{self.domain}/api/v2/"
            )
            self.calls.append((path, ok))
            if not ok:
                return 401, {"error": "access_denied", "error_description": "Unauthorized"}
            return 200, {
                "access_token": self.access_token,
                "token_type": "Bearer",
                "expires_in": 86400,
                "scope": "update:client_keys",
            }
        authorised = authorization == f"Bearer {self.access_token}"
        self.calls.append((path, authorised))
        return self._rotate(path, authorised)

    def _rotate(self, path: str, authorised: bool) -> tuple[int, dict[str, Any]]:
        if not authorised:
            return 401, _error(401, "Unauthorized", "Invalid token", "invalid_token")
        if self.rotate_status is not None:
            return self.rotate_status, _error(
                self.rotate_status,
                "Forbidden",
                "Insufficient scope, expected any of: update:client_keys",
                "insufficient_scope",
            )
        if path != f"/api/v2/clients/{self.client_id}/rotate-secret":
            return 404, _error(404, "Not Found", "The client does not exist", "inexistent_client")
        new_secret = secrets.token_urlsafe(48)
        self.new_secrets.append(new_secret)
        return 200, {"client_id": self.client_id, "name": "Yosai", "client_secret": new_secret}

    def close(self) -> None:
        """Stop serving."""
        self._http.close()


def _error(status: int, error: str, message: str, code: str) -> dict[str, Any]:
    return {"statusCode": status, "error": error, "message": message, "errorCode": code}
