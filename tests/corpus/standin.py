"""A stand-in Vault server for the answers a real OpenBao cannot be made to give.

OpenBao never answers a read with a body that drips one byte at a time, hangs after its headers,
is cut off, is not JSON, is 20 MB, is JSON nested 100,000 deep, echoes the request's token into an
error, or a 307 to a leader that is gone without a whole Raft cluster; a proxy, a load balancer or
a broken server in front of it can. This one answers ``GET /v1/secret/data/<mode>`` as ``<mode>``
says (a path under the mode is ignored), ``auth/token/lookup-self`` as a valid token, and an
AppRole login with a token that holds a line break.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.corpus import closed_port

__all__ = ["VaultStandIn"]

_DEEP = 100_000


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", headers.pop("content_type", "application/json"))
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def _drip(handler: BaseHTTPRequestHandler, seconds: float, *, first: bool) -> None:
    """Headers, then one byte every ``seconds`` (none at all if not ``first``) for up to 15 s."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "4096")
    handler.end_headers()
    handler.wfile.flush()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(seconds)
        if first:
            try:
                handler.wfile.write(b" ")
                handler.wfile.flush()
            except OSError:
                return


def _cut(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b'{"data": {"data": {"pass')
    handler.wfile.flush()
    handler.close_connection = True


def _token(handler: BaseHTTPRequestHandler) -> str:
    return handler.headers.get("X-Vault-Token", "")


_MODES: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {
    "retry-after": lambda h: _send(
        h, 429, b'{"errors": ["rate limit quota exceeded"]}', Retry_After="1"
    ),
    "retry-after-huge": lambda h: _send(h, 429, b'{"errors": []}', Retry_After="86400"),
    "retry-after-garbage": lambda h: _send(h, 429, b"{}", Retry_After="soon, maybe"),
    "redirect": lambda h: _send(
        h,
        307,
        b"",
        Location=f"http://127.0.0.1:{closed_port()}/v1/secret/data/redirect",
    ),
    "redirect-with-token": lambda h: _send(
        h,
        307,
        b"",
        Location=f"http://x:{_token(h)}@127.0.0.1:{closed_port()}/v1/secret/data/x",
    ),
    "drip": lambda h: _drip(h, 0.4, first=True),
    "hang": lambda h: _drip(h, 0.5, first=False),
    "cut": _cut,
    "slow-headers": lambda h: time.sleep(6),
    "non-json": lambda h: _send(
        h,
        200,
        f"<html>gateway says hello to {_token(h)}</html>".encode(),
        content_type="text/html",
    ),
    "non-json-502": lambda h: _send(
        h, 502, f"<html>bad gateway for {_token(h)}</html>".encode(), content_type="text/html"
    ),
    "empty": lambda h: _send(h, 200, b""),
    "list": lambda h: _send(h, 200, b'{"data": ["a", "b"]}'),
    "string-data": lambda h: _send(h, 200, b'{"data": "just text"}'),
    "huge": lambda h: _send(h, 200, b'{"data": {"data": {"x": "' + b"A" * (20 << 20) + b'"}}}'),
    "deep": lambda h: _send(h, 200, b'{"data": ' + b"[" * _DEEP + b"]" * _DEEP + b"}"),
    "deep-object": lambda h: _send(
        h, 200, b'{"data": {"data": ' + b'{"a":' * _DEEP + b"1" + b"}" * _DEEP + b"}}"
    ),
    "echo-token-400": lambda h: _send(
        h, 400, json.dumps({"errors": [f"token {_token(h)} is malformed"]}).encode()
    ),
    "echo-token-500": lambda h: _send(
        h, 500, json.dumps({"errors": [f"internal error with {_token(h)}"]}).encode()
    ),
    "echo-token-403": lambda h: _send(
        h, 403, json.dumps({"errors": [f"permission denied for {_token(h)}"]}).encode()
    ),
    "teapot": lambda h: _send(h, 418, b'{"errors": ["short and stout"]}'),
    "null-data": lambda h: _send(h, 200, b'{"data": {"data": null, "metadata": {}}}'),
}


class VaultStandIn:
    """The stand-in on a free 127.0.0.1 port; ``addr`` is its address, ``token`` any token."""

    token = "standin-token"

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?")[0].removeprefix("/v1/")
                if path == "auth/token/lookup-self":
                    _send(self, 200, b'{"data": {"ttl": 0, "policies": ["root"]}}')
                    return
                mode = path.removeprefix("secret/data/").split("/")[0]
                answer = _MODES.get(mode)
                if answer is None:
                    _send(self, 404, b'{"errors": []}')
                    return
                try:
                    answer(self)
                except OSError:
                    self.close_connection = True

            def do_POST(self) -> None:
                # An AppRole login whose answer is a token no header can carry (it echoes the
                # secret id after a line break): what a broken or hostile server could send.
                length = int(self.headers.get("Content-Length") or 0)
                sent = json.loads(self.rfile.read(length) or b"{}")
                if self.path.removeprefix("/v1/") != "auth/approle/login":
                    _send(self, 404, b'{"errors": []}')
                    return
                token = "s.broken\r\nX-Echo: " + str(sent.get("secret_id", ""))
                answer = {"auth": {"client_token": token, "lease_duration": 60, "renewable": False}}
                _send(self, 200, json.dumps(answer).encode())

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.addr = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
