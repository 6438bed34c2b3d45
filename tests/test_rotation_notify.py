"""Telling running processes after a rotation: the API's machine token, URLs, a pid file."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from tests.rotation_support import sighup_listener
from tests.servers.process import free_port
from yosai_secrets.api import create_app
from yosai_secrets.cli import cli
from yosai_secrets.manager import SecretManager, reset_default_manager
from yosai_secrets.rotation.notify import notify_all, notify_targets
from yosai_secrets.testing import MemoryBackend

from .rotation_support import make_manifest

TOKEN = "notify-" + "t" * 40  # the API's SECRETS_INVALIDATE_TOKEN and the rotation's token


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def api(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[Flask, MemoryBackend, str]]:
    """A real API app on a real HTTP server (127.0.0.1), its secrets in a memory backend."""
    monkeypatch.setenv("YOSAI_ENV", "test")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(tmp_path / "no-config"))
    monkeypatch.setenv("SECRETS_INVALIDATE_TOKEN", TOKEN)
    backend = MemoryBackend({"SECRET_KEY": "k" * 40, "DB_PASSWORD": "first-db-password-1234"})
    reset_default_manager(SecretManager(backend, ttl_seconds=3600))
    app = create_app({"TESTING": True, "YOSAI_SIGHUP": False, "YOSAI_DASHBOARD": False})
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, backend, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_rotation_tells_a_running_api_whose_cache_is_then_cleared(
    api: tuple[Flask, MemoryBackend, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rotation POSTs to the API's invalidate endpoint with the machine token; the API's
    cached secrets are forgotten, and the summary names it as told, without the token."""
    app, backend, url = api
    manager = app.extensions["yosai_secrets"].manager
    assert manager.get("DB_PASSWORD") == "first-db-password-1234"
    backend.data["DB_PASSWORD"] = "second-db-password-5678"
    assert manager.get("DB_PASSWORD") == "first-db-password-1234"  # cached for an hour
    monkeypatch.setenv("ROTATION_NOTIFY_URLS", url + "/")
    monkeypatch.setenv("ROTATION_NOTIFY_TOKEN", TOKEN)
    path = make_manifest(tmp_path)
    code, out = _run("rotate", "--manifest", str(path), "--keys", "SECRET_KEY", "--no-apply")
    assert code == 0, out
    assert manager.get("DB_PASSWORD") == "second-db-password-5678"  # read again: it was told
    assert f"Told to drop cached secrets: {url}/api/secrets/invalidate (HTTP 200)" in out
    assert TOKEN not in out


def test_failures_are_reported_and_nothing_is_sent_without_a_token_or_with_credentials(
    api: tuple[Flask, MemoryBackend, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closed port, a refused token, a URL with credentials and a bad pid file are each
    reported as not told, the run still completes, and no credential is shown."""
    _, _, url = api
    closed = f"http://127.0.0.1:{free_port()}"
    with_credentials = url.replace("http://", "http://ops:hunter2-pw@")
    monkeypatch.setenv("ROTATION_NOTIFY_URLS", f"{closed}, {with_credentials},{url}")
    monkeypatch.setenv("ROTATION_NOTIFY_TOKEN", "wrong-" + "x" * 40)
    monkeypatch.setenv("ROTATION_NOTIFY_PIDFILE", str(tmp_path / "missing.pid"))
    path = make_manifest(tmp_path)
    code, out = _run("rotate", "--manifest", str(path), "--keys", "SECRET_KEY", "--no-apply")
    assert code == 0, out
    assert "NOT told (their caches keep old values):" in out
    assert f"{closed}/api/secrets/invalidate (Connection refused)" in out
    assert f"{url}/api/secrets/invalidate (the address holds credentials" in out
    assert f"{url}/api/secrets/invalidate (HTTP 401)" in out
    assert f"pid file {tmp_path / 'missing.pid'} (cannot read it" in out
    assert "hunter2-pw" not in out and "wrong-" not in out
    monkeypatch.delenv("ROTATION_NOTIFY_TOKEN")
    (result,) = notify_all({"ROTATION_NOTIFY_URLS": url})
    assert not result.ok and "ROTATION_NOTIFY_TOKEN is not set" in result.detail


def test_pid_file_process_gets_sighup(tmp_path: Path) -> None:
    """The process named in ROTATION_NOTIFY_PIDFILE receives SIGHUP (here: its default, exit)."""
    child = sighup_listener()
    try:
        pidfile = tmp_path / "api.pid"
        pidfile.write_text(f"{child.pid}\n", encoding="utf-8")
        (result,) = notify_all({"ROTATION_NOTIFY_PIDFILE": str(pidfile)})
        assert result.ok and result.detail == f"SIGHUP sent to process {child.pid}"
        assert child.wait(timeout=10) == -signal.SIGHUP
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    pidfile.write_text("0\n", encoding="utf-8")  # 0 would signal our whole process group
    (result,) = notify_all({"ROTATION_NOTIFY_PIDFILE": str(pidfile)})
    assert not result.ok and "does not hold a process id" in result.detail


def test_a_silent_server_times_out_and_a_redirect_is_not_followed() -> None:
    """Every HTTP call is bounded; a redirect (which would carry the token elsewhere) fails."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://example.invalid/steal")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    redirecting = HTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=redirecting.serve_forever, daemon=True)
    thread.start()
    try:
        urls = (
            f"http://127.0.0.1:{silent.getsockname()[1]},http://127.0.0.1:{redirecting.server_port}"
        )
        started = time.monotonic()
        timed_out, redirected = notify_all(
            {"ROTATION_NOTIFY_URLS": urls, "ROTATION_NOTIFY_TOKEN": TOKEN}, timeout_seconds=0.5
        )
        assert time.monotonic() - started < 5
    finally:
        redirecting.shutdown()
        redirecting.server_close()
        silent.close()
    assert not timed_out.ok and timed_out.detail == "timed out"
    assert not redirected.ok and redirected.detail == "HTTP 302"


def test_targets_are_shown_without_credentials() -> None:
    """What would be told is listed with the invalidate path and without user:password@."""
    environ = {
        "ROTATION_NOTIFY_URLS": "https://a:b@api.internal/, http://10.0.0.5:8050/api/secrets/invalidate",
        "ROTATION_NOTIFY_PIDFILE": "/run/api.pid",
    }
    assert notify_targets(environ) == [
        "https://api.internal/api/secrets/invalidate",
        "http://10.0.0.5:8050/api/secrets/invalidate",
        "pid file /run/api.pid",
    ]


# -- the API's side -------------------------------------------------------------------------------


@pytest.fixture
def client_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Flask:
    """An API app (Flask test client) with a memory backend and no Auth0 tenant."""
    monkeypatch.setenv("YOSAI_ENV", "test")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(tmp_path / "no-config"))
    reset_default_manager(SecretManager(MemoryBackend({"SECRET_KEY": "k" * 40}), environ={}))
    return create_app({"TESTING": True, "YOSAI_SIGHUP": False, "YOSAI_DASHBOARD": False})


@pytest.mark.parametrize(
    ("configured", "sent", "status"),
    [
        (TOKEN, TOKEN, 200),
        (TOKEN, TOKEN + "x", 401),
        (TOKEN, "", 401),
        (None, TOKEN, 401),
        ("short-token", "short-token", 401),
    ],
    ids=["match", "mismatch", "none-sent", "unset", "too-short"],
)
def test_invalidate_accepts_only_the_configured_machine_token(
    client_app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    configured: str | None,
    sent: str,
    status: int,
) -> None:
    """POST /api/secrets/invalidate lets a bearer equal to SECRETS_INVALIDATE_TOKEN (32+
    characters) through, and nothing else without an Auth0 token."""
    if configured is not None:
        monkeypatch.setenv("SECRETS_INVALIDATE_TOKEN", configured)
    headers = {"Authorization": f"Bearer {sent}"} if sent else {}
    response = client_app.test_client().post("/api/secrets/invalidate", headers=headers)
    assert response.status_code == status
    if status == 200:
        assert response.get_json()["invalidated"] == "all"


def test_machine_token_opens_nothing_but_invalidation(
    client_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The machine token is not an Auth0 token: GET /api/secrets still refuses it."""
    monkeypatch.setenv("SECRETS_INVALIDATE_TOKEN", TOKEN)
    response = client_app.test_client().get(
        "/api/secrets", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 401


def test_machine_token_never_reaches_a_log_line(
    client_app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    root_logger_capture: list[str],
) -> None:
    """Once the API has used its machine token, no log line shows it, whoever logs it."""
    monkeypatch.setenv("SECRETS_INVALIDATE_TOKEN", TOKEN)
    import logging

    response = client_app.test_client().post(
        "/api/secrets/invalidate", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200
    logging.getLogger("yosai_secrets.api.auth").warning("echo %s", TOKEN)
    assert root_logger_capture and not any(TOKEN in line for line in root_logger_capture)
