"""The API: health, readiness, the posture endpoints, invalidation, SIGHUP, the page's access,
``yosai-secrets serve``, and that no response ever carries a secret value."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import yosai_secrets.api as api_package
from tests.auth0_helpers import Tenant, new_tenant
from tests.servers.process import free_port
from yosai_secrets.api import create_app
from yosai_secrets.api.posture import RotationInfo
from yosai_secrets.api.signals import cleared_count
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.manager import SecretManager, reset_default_manager
from yosai_secrets.testing import FakeClock, MemoryBackend

REPO_ROOT = Path(__file__).resolve().parent.parent
SIX = ("SECRET_KEY", "DB_PASSWORD", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET")


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    """One stand-in Auth0 tenant for the module."""
    made = new_tenant()
    yield made
    made.server.close()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tenant: Tenant) -> pytest.MonkeyPatch:
    """The test environment: no configuration files, the stand-in tenant, a SECRET_KEY."""
    monkeypatch.setenv("YOSAI_ENV", "test")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(tmp_path / "no-config"))
    monkeypatch.setenv("SECRET_KEY", "s" * 20 + os.urandom(16).hex())
    monkeypatch.setenv("AUTH0_DOMAIN", tenant.domain)
    monkeypatch.setenv("AUTH0_AUDIENCE", tenant.audience)
    monkeypatch.setenv("AUTH0_JWKS_URL", tenant.server.url)
    return monkeypatch


def _production(monkeypatch: pytest.MonkeyPatch, canary: str) -> dict[str, str]:
    """Set all six secrets (canaries) and production; return the values set."""
    values = {
        "SECRET_KEY": f"{canary}-secret-key-0123456789abcdef",
        "SECRET_KEY_FALLBACKS": json.dumps([f"{canary}-old-key-0123456789abcdef"]),
        "DB_PASSWORD": f"{canary}-db-password",
        "AUTH0_CLIENT_ID": f"{canary}-client-id",
        "AUTH0_CLIENT_SECRET": f"{canary}-client-secret",
    }
    monkeypatch.setenv("YOSAI_ENV", "production")
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def _app(**settings: Any) -> Flask:
    config = {"TESTING": True, "YOSAI_SIGHUP": False, "YOSAI_DASHBOARD": False, **settings}
    return create_app(config)


def _bearer(tenant: Tenant, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.token(**claims)}"}


def _rows(client: FlaskClient, tenant: Tenant) -> dict[str, dict[str, Any]]:
    response = client.get("/api/secrets", headers=_bearer(tenant))
    assert response.status_code == 200
    return {row["name"]: row for row in response.get_json()["secrets"]}


def test_factory_builds_fresh_apps_and_no_module_app(env: pytest.MonkeyPatch) -> None:
    """create_app() returns a new app each call; the package holds no app of its own."""
    assert _app() is not _app()
    assert not any(isinstance(v, Flask) for v in vars(api_package).values())


def test_healthz(env: pytest.MonkeyPatch) -> None:
    """GET /healthz answers 200 while the process is alive."""
    response = _app().test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_names_unresolvable_secrets_never_values(
    env: pytest.MonkeyPatch, canary: str
) -> None:
    """/readyz is 200 when every required secret resolves, else 503 naming the missing ones."""
    values = _production(env, canary)
    client = _app().test_client()
    assert client.get("/readyz").status_code == 200
    env.delenv("DB_PASSWORD")
    env.delenv("AUTH0_CLIENT_ID")
    client.application.extensions["yosai_secrets"].clear_caches(["DB_PASSWORD", "AUTH0_CLIENT_ID"])
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "not ready",
        "unresolvable": ["DB_PASSWORD", "AUTH0_CLIENT_ID"],
    }
    assert not any(v in response.get_data(as_text=True) for v in values.values())


def test_production_without_db_password_refuses_to_start(
    env: pytest.MonkeyPatch, canary: str
) -> None:
    """create_app() in production without DB_PASSWORD refuses with the error naming it."""
    values = _production(env, canary)
    env.delenv("DB_PASSWORD")
    with pytest.raises(ConfigurationError) as info:
        _app()
    assert isinstance(info.value, RuntimeError)
    assert "DB_PASSWORD" in str(info.value)
    assert not any(v in str(info.value) for v in values.values())


def test_no_secret_key_is_a_runtime_error(env: pytest.MonkeyPatch) -> None:
    """create_app() without SECRET_KEY raises a RuntimeError naming SECRET_KEY."""
    env.delenv("SECRET_KEY")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        _app()


def test_posture_rows_from_files_and_variables(
    env: pytest.MonkeyPatch, tenant: Tenant, tmp_path: Path
) -> None:
    """Rows give source, state, last rotation and days until due; a 100-day-old key is overdue."""
    key_file = tmp_path / "secret_key"
    key_file.write_text("f" * 20 + os.urandom(16).hex())
    old = time.time() - 100 * 86400
    os.utime(key_file, (old, old))
    env.delenv("SECRET_KEY")
    env.setenv("SECRET_KEY_FILE", str(key_file))
    env.setenv("DB_PASSWORD", "db-" + os.urandom(8).hex())
    rows = _rows(_app().test_client(), tenant)
    assert list(rows) == [
        "SECRET_KEY",
        "DB_PASSWORD",
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "AUTH0_DOMAIN",
        "AUTH0_AUDIENCE",
    ]
    key = rows["SECRET_KEY"]
    assert key["state"] == "overdue"
    assert key["source"] == "env"
    assert key["where"] == f"SECRET_KEY_FILE={key_file}"
    assert key["age_days"] == pytest.approx(100, abs=0.2)
    assert key["days_until_due"] == -10
    assert key["required"] is True
    db = rows["DB_PASSWORD"]
    # Covered by the policy but with no rotation record anywhere: unknown, as `status` says.
    assert (db["state"], db["last_rotated"], db["days_until_due"]) == ("unknown", None, None)
    assert rows["AUTH0_CLIENT_SECRET"]["state"] == "missing"
    assert rows["AUTH0_CLIENT_SECRET"]["required"] is False


def test_rotation_info_provider_gives_version_and_due(
    env: pytest.MonkeyPatch, tenant: Tenant
) -> None:
    """With rotation records (version, time), a 30-day-old secret is due in 60 days."""
    rotated = datetime.now(UTC) - timedelta(days=30, hours=1)

    def info(name: str, manager: SecretManager) -> RotationInfo | None:
        return RotationInfo(last_rotated=rotated, version="7") if name == "SECRET_KEY" else None

    body = _app(YOSAI_ROTATION_INFO=info).test_client()
    row = _rows(body, tenant)["SECRET_KEY"]
    assert (row["state"], row["version"], row["days_until_due"]) == ("ok", "7", 60)
    assert row["last_rotated"] == rotated.isoformat(timespec="seconds")


def test_policy_follows_rotation_max_age_days(env: pytest.MonkeyPatch, tenant: Tenant) -> None:
    """ROTATION_MAX_AGE_DAYS changes the policy the rows are judged by."""
    env.setenv("ROTATION_MAX_AGE_DAYS", "20")
    rotated = datetime.now(UTC) - timedelta(days=30)
    app = _app(YOSAI_ROTATION_INFO=lambda name, manager: RotationInfo(last_rotated=rotated))
    response = app.test_client().get("/api/secrets", headers=_bearer(tenant))
    assert response.get_json()["policy_days"] == 20
    assert response.get_json()["secrets"][0]["state"] == "overdue"


@pytest.fixture
def memory(env: pytest.MonkeyPatch) -> tuple[MemoryBackend, FakeClock]:
    """A memory backend behind the process-wide manager, on a fake clock."""
    env.delenv("SECRET_KEY")
    backend = MemoryBackend({"SECRET_KEY": "m" * 20 + os.urandom(16).hex()})
    clock = FakeClock()
    reset_default_manager(SecretManager(backend, clock=clock, ttl_seconds=60))
    return backend, clock


def test_stale_served_state(memory: tuple[MemoryBackend, FakeClock], tenant: Tenant) -> None:
    """A secret served from cache while its backend fails is reported stale-served, still ready."""
    backend, clock = memory
    client = _app().test_client()
    assert _rows(client, tenant)["SECRET_KEY"]["state"] == "unknown"  # read, never rotated
    backend.failing = True
    clock.advance(61)
    assert _rows(client, tenant)["SECRET_KEY"]["state"] == "stale-served"
    assert client.get("/readyz").status_code == 200


def test_invalidate_all_or_some_keys(
    memory: tuple[MemoryBackend, FakeClock], tenant: Tenant
) -> None:
    """POST /api/secrets/invalidate forgets every cached secret, or only the keys named."""
    backend, _ = memory
    backend.data["DB_PASSWORD"] = "db-one-" + os.urandom(8).hex()
    app = _app()
    client = app.test_client()
    manager = app.extensions["yosai_secrets"].manager
    manager.get("DB_PASSWORD")
    calls = backend.calls
    response = client.post(
        "/api/secrets/invalidate", json={"keys": ["DB_PASSWORD"]}, headers=_bearer(tenant)
    )
    assert response.status_code == 200
    assert response.get_json() == {"invalidated": ["DB_PASSWORD"], "paths": 1}
    manager.get("DB_PASSWORD")
    manager.get("SECRET_KEY")
    assert backend.calls == calls + 1  # only DB_PASSWORD was read again
    response = client.post("/api/secrets/invalidate", headers=_bearer(tenant))
    assert response.get_json() == {"invalidated": "all", "paths": 2}


@pytest.mark.parametrize(
    "body",
    ['{"keys": "DB_PASSWORD"}', '{"keys": []}', '{"keys": [1]}', "not json", "[]"],
)
def test_invalidate_rejects_malformed_bodies(
    env: pytest.MonkeyPatch, tenant: Tenant, body: str
) -> None:
    """A body that is not {"keys": [names]} gets 400 and clears nothing."""
    response = (
        _app()
        .test_client()
        .post(
            "/api/secrets/invalidate",
            data=body,
            content_type="application/json",
            headers=_bearer(tenant),
        )
    )
    assert response.status_code == 400


@pytest.fixture
def restore_sighup() -> Iterator[None]:
    """Put back the process's SIGHUP handler after the test."""
    previous = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, previous)


def test_sighup_clears_every_cache(
    memory: tuple[MemoryBackend, FakeClock], tenant: Tenant, restore_sighup: None
) -> None:
    """SIGHUP makes the process forget every cached secret and the JWKS."""
    app = create_app({"TESTING": True, "YOSAI_DASHBOARD": False})
    client = app.test_client()
    assert client.get("/api/secrets", headers=_bearer(tenant)).status_code == 200
    manager = app.extensions["yosai_secrets"].manager
    assert manager.stats().size > 0
    backend, _ = memory
    jwks_before = tenant.server.requests
    calls_before = backend.calls
    cleared = cleared_count()
    os.kill(os.getpid(), signal.SIGHUP)
    deadline = time.monotonic() + 30  # the clearing thread needs milliseconds: a hang guard
    while cleared_count() == cleared and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cleared_count() == cleared + 1
    # SECRET_KEY was read again from the backend (the session keys are re-read on a clear).
    assert backend.calls > calls_before
    assert client.get("/api/secrets", headers=_bearer(tenant)).status_code == 200
    assert tenant.server.requests == jwks_before + 1


def test_posture_page_is_open_in_development(env: pytest.MonkeyPatch) -> None:
    """In development /dashboard/ and its layout are served without a login."""
    env.setenv("YOSAI_ENV", "development")
    client = _app(YOSAI_DASHBOARD=True).test_client()
    assert client.get("/dashboard/").status_code == 200
    layout = client.get("/dashboard/_dash-layout")
    assert layout.status_code == 200
    assert "row-SECRET_KEY" in layout.get_data(as_text=True)


def test_root_redirects_to_the_posture_page(env: pytest.MonkeyPatch) -> None:
    """GET / answers 302 to /dashboard/ when the page is mounted, and 404 when it is off."""
    response = _app(YOSAI_DASHBOARD=True).test_client().get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard/"
    assert _app().test_client().get("/").status_code == 404


def test_posture_page_needs_auth0_outside_development(
    env: pytest.MonkeyPatch, tenant: Tenant
) -> None:
    """Outside development the page needs a valid Auth0 token or a logged-in session."""
    app = _app(YOSAI_DASHBOARD=True)
    client = app.test_client()
    for path in ("/dashboard/", "/dashboard/_dash-layout", "/dashboard/_dash-dependencies"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.get_json() == {"error": "unauthorized"}
    assert client.get("/dashboard/", headers=_bearer(tenant, aud="other")).status_code == 401
    assert client.get("/dashboard/", headers=_bearer(tenant)).status_code == 200
    with client.session_transaction() as session:
        session["auth0_sub"] = "auth0|operator"
    assert client.get("/dashboard/_dash-layout").status_code == 200


def test_no_response_ever_carries_a_secret_value(
    env: pytest.MonkeyPatch,
    tenant: Tenant,
    canary: str,
    root_logger_capture: list[str],
) -> None:
    """Every endpoint and the page, authorised or refused, is scanned for the values set."""
    values = _production(env, canary)
    app = _app(YOSAI_DASHBOARD=True)
    client = app.test_client()
    good = _bearer(tenant)
    reader = _bearer(tenant, permissions=["secrets:read"])
    responses = [
        client.get("/healthz"),
        client.get("/readyz"),
        client.get("/api/secrets"),
        client.get("/api/secrets", headers=good),
        client.get("/api/secrets", headers=_bearer(tenant, iss="https://evil/")),
        client.post("/api/secrets/invalidate", headers=reader),
        client.post("/api/secrets/invalidate", json={"keys": ["DB_PASSWORD"]}, headers=good),
        client.post("/api/secrets/invalidate", data="junk", headers=good),
        client.get("/dashboard/"),
        client.get("/dashboard/", headers=good),
        client.get("/dashboard/_dash-layout", headers=good),
        client.get("/dashboard/_dash-dependencies", headers=good),
        client.get("/no-such-page"),
    ]
    env.delenv("DB_PASSWORD")
    app.extensions["yosai_secrets"].clear_caches()
    responses += [client.get("/readyz"), client.get("/api/secrets", headers=good)]
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 401, 200, 401, 403, 200, 400, 401, 200, 200, 200, 404, 503, 200]
    for response in responses:
        text = response.get_data(as_text=True) + str(response.headers)
        leaked = [name for name, value in values.items() if value in text or canary in text]
        assert not leaked, f"{response.request.path} leaked {leaked}"
    assert not any(canary in line for line in root_logger_capture)


def _wait_for(url: str, process: subprocess.Popen[str], timeout_seconds: float = 20) -> bytes:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                return bytes(response.read())
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout_seconds} s")


@pytest.mark.integration  # a server in a subprocess (werkzeug's, or gunicorn)
@pytest.mark.parametrize(
    ("environment", "server"), [("development", "development server"), ("test", "gunicorn")]
)
def test_serve_runs_the_api_and_prints_its_address(
    tmp_path: Path, environment: str, server: str
) -> None:
    """`serve` runs Flask's server in development, else gunicorn, and logs no colour codes."""
    port = free_port()
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("SECRET", "YOSAI_", "AUTH0_"))
    }
    environ.update(YOSAI_ENV=environment, YOSAI_CONFIG_DIR=str(tmp_path / "no-config"))
    if environment != "development":
        environ["SECRET_KEY"] = "g" * 20 + os.urandom(16).hex()
    run_cli = "from yosai_secrets.cli import main; main()"
    command = [sys.executable, "-c", run_cli, "serve", "--port", str(port)]
    if environment != "development":
        command += ["--workers", "1"]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**environ, "PYTHONPATH": str(REPO_ROOT / "src")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert json.loads(_wait_for(f"http://127.0.0.1:{port}/healthz", process)) == {
            "status": "ok"
        }
        if environment == "development":
            assert (tmp_path / "secrets" / "secret_key.txt").exists()
            assert _wait_for(f"http://127.0.0.1:{port}/dashboard/", process)
            assert _wait_for(f"http://127.0.0.1:{port}/", process)  # 302 to the page
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert f"({environment}, {server}) on http://127.0.0.1:{port}/" in output
    if environment == "development":
        # werkzeug colours its banner and request lines; the log shows them as plain text.
        assert "This is a development server" in output
        assert '"GET / HTTP/1.1" 302' in output  # a line werkzeug colours green
    assert "\x1b[" not in output


def test_serve_refuses_with_one_line_when_a_secret_is_missing(tmp_path: Path) -> None:
    """`yosai-secrets serve` in production without secrets exits 2 with one clear error line."""
    from click.testing import CliRunner

    from yosai_secrets.cli import cli

    result = CliRunner().invoke(
        cli, ["serve"], env={"YOSAI_ENV": "test", "YOSAI_CONFIG_DIR": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert "SECRET_KEY" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("environment", ["development", "test"])
def test_serve_says_first_that_the_port_is_taken(tmp_path: Path, environment: str) -> None:
    """`serve` on a port another program listens on exits 2 with one line naming it first."""
    from click.testing import CliRunner

    from yosai_secrets.cli import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli,
            ["serve", "--port", str(port)],
            env={
                "YOSAI_ENV": environment,
                "YOSAI_CONFIG_DIR": str(tmp_path),
                "YOSAI_LOCAL_SECRETS_DIR": str(tmp_path / "secrets"),
            },
        )
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use by another program; pick another "
        f"port: PORT={port + 1} make run, or yosai-secrets serve --port {port + 1}"
    ]
    assert not (tmp_path / "secrets").exists()  # said first: nothing generated, no app built


def test_werkzeug_log_lines_lose_their_colour_codes(root_logger_capture: list[str]) -> None:
    """The filter serve installs on werkzeug's logger strips ANSI codes from message and args."""
    from yosai_secrets.api.server import PlainLogFilter, plain_werkzeug_log

    logger = logging.getLogger("werkzeug")
    plain_werkzeug_log()
    plain_werkzeug_log()
    try:
        assert sum(isinstance(f, PlainLogFilter) for f in logger.filters) == 1
        logger.warning("\x1b[31m\x1b[1mWARNING: This is a development server.\x1b[0m")
        logger.warning('"%s" %s %s', "\x1b[33mGET /missing HTTP/1.1\x1b[0m", "404", "-")
    finally:
        for found in [f for f in logger.filters if isinstance(f, PlainLogFilter)]:
            logger.removeFilter(found)
    assert root_logger_capture == [
        "WARNING werkzeug: WARNING: This is a development server.",
        'WARNING werkzeug: "GET /missing HTTP/1.1" 404 -',
    ]


@pytest.mark.integration
def test_rotation_times_come_from_each_keys_vault_stamp(openbao: Any) -> None:
    """With SECRET_BACKEND=vault a key's last rotation is its own stamp, never the version time."""
    import uuid

    from yosai_secrets.api.posture import StoreRotationInfo

    path = f"yosai-{uuid.uuid4().hex[:8]}"
    kv = openbao.client().secrets.kv.v2
    kv.create_or_update_secret(
        path=path, secret={"SECRET_KEY": "v" * 40, "DB_PASSWORD": "p" * 20}, mount_point="secret"
    )
    stamp = "2026-11-01T08:00:00Z"
    kv.update_metadata(
        path=path, mount_point="secret", custom_metadata={"rotated_at_SECRET_KEY": stamp}
    )
    provider = StoreRotationInfo(
        {
            "SECRET_BACKEND": "vault",
            "VAULT_ADDR": openbao.addr,
            "VAULT_TOKEN": openbao.token,
            "VAULT_SECRETS_PATH": f"secret/data/{path}",
        }
    )
    manager = SecretManager(MemoryBackend())
    info = provider("SECRET_KEY", manager)
    assert info is not None and info.last_rotated == datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert info.source == "vault"
    # Written just now in the same version, but never stamped: unknown, not fresh.
    assert provider("DB_PASSWORD", manager) is None


def test_placeholders_are_missing_on_the_posture_page(
    env: pytest.MonkeyPatch, tenant: Tenant
) -> None:
    """The example's replace-me-* values are 'missing' (not set) on the page, never shown."""
    env.setenv("AUTH0_CLIENT_ID", "replace-me-auth0-client-id")
    env.setenv("DB_PASSWORD", "REPLACE-ME-db-password")
    rows = _rows(_app().test_client(), tenant)
    for name in ("AUTH0_CLIENT_ID", "DB_PASSWORD"):
        assert (rows[name]["state"], rows[name]["where"]) == ("missing", None)
        assert rows[name]["detail"] == "not set (it holds the example's placeholder)"
    assert "replace-me" not in json.dumps(rows).lower()


def test_posture_of_the_shipped_production_configuration(
    env: pytest.MonkeyPatch, tenant: Tenant, canary: str
) -> None:
    """secret:NAME references of config/production.yaml are shown as the default backend's."""
    _production(env, canary)
    env.setenv("DB_USER", "yosai_app")
    env.setenv("YOSAI_CONFIG_DIR", str(REPO_ROOT / "config"))
    rows = _rows(_app().test_client(), tenant)
    assert (rows["DB_PASSWORD"]["source"], rows["DB_PASSWORD"]["where"]) == (
        "env",
        "env DB_PASSWORD",
    )
    assert rows["AUTH0_CLIENT_SECRET"]["state"] == "unknown"  # judged, with no record anywhere


@pytest.mark.integration  # gunicorn in a subprocess
def test_hup_to_the_gunicorn_master_makes_every_worker_read_afresh(
    tmp_path: Path, tenant: Tenant
) -> None:
    """After SIGHUP to `serve`'s gunicorn master, workers no longer serve what was cached."""
    port = free_port()
    # A Docker secret that disappears (a *_FILE naming a missing file would stop start-up).
    secrets_dir = tmp_path / "run-secrets"
    secrets_dir.mkdir()
    # AUTH0_CLIENT_ID: present or missing, never judged for age (its file's time does not matter).
    secret_file = secrets_dir / "auth0_client_id"
    secret_file.write_text("c" * 40)
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("SECRET", "YOSAI_", "AUTH0_"))
    }
    environ.update(
        YOSAI_ENV="test",
        YOSAI_CONFIG_DIR=str(tmp_path / "no-config"),
        SECRET_KEY="h" * 20 + os.urandom(16).hex(),
        SECRETS_DIR=str(secrets_dir),
        AUTH0_DOMAIN=tenant.domain,
        AUTH0_AUDIENCE=tenant.audience,
        AUTH0_JWKS_URL=tenant.server.url,
    )
    run_cli = "from yosai_secrets.cli import main; main()"
    process = subprocess.Popen(
        [sys.executable, "-c", run_cli, "serve", "--port", str(port), "--workers", "1"],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )

    def state() -> str:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/secrets", headers=_bearer(tenant)
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            rows = json.loads(response.read())["secrets"]
        return str(next(r["state"] for r in rows if r["name"] == "AUTH0_CLIENT_ID"))

    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", process)
        assert state() == "ok"
        secret_file.unlink()
        assert state() == "ok"  # cached for its TTL
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if state() == "missing":
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert state() == "missing"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_readiness_and_posture_follow_the_configuration_references(
    env: pytest.MonkeyPatch, tenant: Tenant, tmp_path: Path, canary: str
) -> None:
    """Secrets the YAML references (file:, env:) or holds are checked where the YAML says."""
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    password = tmp_path / "db_password"
    password.write_text(f"{canary}-db-password")
    (config_dir / "production.yaml").write_text(
        "security:\n  secret_key: env:APP_SIGNING_KEY\n"
        f"database:\n  password: file:{password}\n"
        "auth0:\n  client_id: dashboard-client\n  client_secret: env:APP_AUTH0_SECRET\n"
        f"  domain: {tenant.domain}\n  audience: {tenant.audience}\n"
    )
    env.setenv("YOSAI_ENV", "production")
    env.setenv("YOSAI_CONFIG_DIR", str(config_dir))
    for name in ("SECRET_KEY", "AUTH0_DOMAIN", "AUTH0_AUDIENCE"):
        env.delenv(name, raising=False)
    env.setenv("APP_SIGNING_KEY", f"{canary}-signing-key-0123456789abcdef")
    env.setenv("APP_AUTH0_SECRET", f"{canary}-auth0-secret")
    app = _app()
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    rows = _rows(client, tenant)
    assert (rows["SECRET_KEY"]["source"], rows["SECRET_KEY"]["state"]) == ("env", "unknown")
    assert rows["DB_PASSWORD"]["source"] == "file"
    assert str(password) in rows["DB_PASSWORD"]["where"]
    assert (rows["AUTH0_CLIENT_ID"]["source"], rows["AUTH0_CLIENT_ID"]["where"]) == (
        "config",
        "configuration file",
    )
    assert "missing" not in {row["state"] for row in rows.values()}
    password.unlink()
    app.extensions["yosai_secrets"].clear_caches()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["unresolvable"] == ["DB_PASSWORD"]
    assert canary not in response.get_data(as_text=True)
