"""``yosai-secrets incident``: one command rotates with no grace, cuts, purges, scans and reports.

Against the suite's real servers (PostgreSQL, OpenBao, moto's AWS emulator). The cluster is the
kubectl stand-in (``tests/kubectl_stub``, no Kubernetes API server can run here): its live Secret
and rollout state are what ``--finish``'s checks read. Each test also greps everything the command
wrote (stdout, the report files) for the leaked and the new values.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.test_rotation_postgres import _make_role, can_login
from tests.test_shipped_config import AUTH0, start_service
from yosai_secrets.cli.incident import incident
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.rotation.journal import journal_path
from yosai_secrets.rotation.postgres import PostgresRoles

from .rotation_cluster import live_values, stub_cluster
from .rotation_support import make_manifest, session_app, session_cookie, values

OLD_KEY = "leaked-signing-key-" + "k" * 40
PREVIOUS_KEY = "previous-signing-key-" + "p" * 40

STEPS = {
    "capture",
    "rotate",
    "cut the leaked database credential",
    "purge the store's old versions",
    "deliver to the cluster",
    "tell running processes",
    "revoke the leaked Vault token / AppRole secret id",
    "revoke Vault leases",
    "scan",
    "audit summary",
    "record",
}


def _run(args: list[str]) -> Result:
    return CliRunner().invoke(incident, args, catch_exceptions=False)


def _report(directory: Path) -> tuple[dict[str, Any], str]:
    """The one JSON report in ``directory`` and the text of its Markdown twin."""
    found = sorted(directory.glob("incident-*.json"))
    assert len(found) == 1, found
    for path in (found[0], found[0].with_suffix(".md")):
        assert path.stat().st_mode & 0o777 == 0o600
    data = json.loads(found[0].read_text(encoding="utf-8"))
    return data, found[0].with_suffix(".md").read_text(encoding="utf-8")


def _statuses(data: dict[str, Any]) -> dict[str, str]:
    return {step["step"]: step["status"] for step in data["steps"]}


def _assert_no_value(texts: list[str], *secrets: str) -> None:
    for secret in secrets:
        assert secret and not any(secret in text for text in texts)


def _admin(postgres: Any) -> Any:
    import psycopg

    return psycopg.connect(postgres.dsn(), autocommit=True)


def _vault_path(openbao: Any, monkeypatch: pytest.MonkeyPatch, data: dict[str, str]) -> str:
    """A fresh VAULT_SECRETS_PATH holding ``data`` in two versions (both hold every value)."""
    path = f"secret/data/incident-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("VAULT_SECRETS_PATH", path)
    openbao.api("PUT", path, {"data": data})
    openbao.api("PUT", path, {"data": {**data, "NOTE": "an unrelated edit"}})
    return path


def _vault_versions(openbao: Any, path: str) -> dict[str, Any]:
    status, answer = openbao.api("GET", path.replace("/data/", "/metadata/", 1))
    assert status == 200
    return dict(answer["data"])


def _vault_environ(openbao: Any, path: str) -> dict[str, str]:
    return {
        "SECRET_BACKEND": "vault",
        "VAULT_ADDR": openbao.addr,
        "VAULT_TOKEN": openbao.token,
        "VAULT_SECRETS_PATH": path,
    }


def _incident_on_db_password(
    tmp_path: Path,
    postgres: Any,
    openbao: Any,
    monkeypatch: pytest.MonkeyPatch,
    *,
    alternating: bool,
    log_lines: list[str],
) -> None:
    """The end-to-end DB_PASSWORD incident, in single-role or alternating-users mode."""
    import psycopg
    from psycopg import sql

    role, leaked = _make_role(postgres)
    args = []
    if alternating:
        second, _ = _make_role(postgres)
        with _admin(postgres) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(second)))
        args = ["--db-users", f"{role},{second}"]
    key = secrets.token_urlsafe(48)  # production refuses a weak one
    before = {**AUTH0, "SECRET_KEY": key, "DB_USER": role, "DB_PASSWORD": leaked}
    vault_path = _vault_path(openbao, monkeypatch, before)
    manifest = make_manifest(tmp_path, SECRET_KEY=key, DB_USER=role, DB_PASSWORD=leaked)
    _, state = stub_cluster(tmp_path, monkeypatch, manifest)
    for name, value in _vault_environ(openbao, vault_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ROTATION_DATABASE_URL", postgres.url())
    attacker = psycopg.connect(postgres.dsn(user=role, password=leaked), autocommit=True)
    attacker.execute("SELECT 1")
    reports = tmp_path / "reports"

    result = _run(["DB_PASSWORD", "--manifest", str(manifest), "--report-dir", str(reports), *args])

    assert result.exit_code == 0, result.output
    with pytest.raises(psycopg.OperationalError):  # the open session was terminated
        attacker.execute("SELECT 1")
    attacker.close()
    assert not can_login(postgres, role, leaked)
    user, password, _ = start_service(_vault_environ(openbao, vault_path))
    assert can_login(postgres, user, password)
    assert password == values(manifest)["DB_PASSWORD"] == live_values(state)["DB_PASSWORD"]
    assert (user != role) is alternating
    meta = _vault_versions(openbao, vault_path)
    old = [v for n, v in meta["versions"].items() if int(n) != meta["current_version"]]
    assert len(old) >= 2 and all(v["destroyed"] for v in old)  # every one held the leaked value
    assert not journal_path(manifest).exists()  # finished in the same run: no --finish left
    data, markdown = _report(reports)
    statuses = _statuses(data)
    assert set(statuses) == STEPS
    assert statuses["cut the leaked database credential"] == "done"
    assert statuses["deliver to the cluster"] == "done"
    assert data["terminated_sessions"] >= 1 and data["rotated"] == ["DB_PASSWORD"]
    assert "destroyed" in " ".join(data["purged"])
    texts = [result.output, markdown, json.dumps(data), "\n".join(log_lines)]
    _assert_no_value(texts, leaked, password)


@pytest.mark.integration
def test_leaked_db_password_single_role(
    tmp_path: Path,
    postgres: Any,
    openbao: Any,
    monkeypatch: pytest.MonkeyPatch,
    root_logger_capture: list[str],
) -> None:
    """One command: the old password and its session are dead, the new one logs in, Vault purged."""
    _incident_on_db_password(
        tmp_path, postgres, openbao, monkeypatch, alternating=False, log_lines=root_logger_capture
    )


@pytest.mark.integration
def test_leaked_db_password_alternating_users(
    tmp_path: Path,
    postgres: Any,
    openbao: Any,
    monkeypatch: pytest.MonkeyPatch,
    root_logger_capture: list[str],
) -> None:
    """Alternating users: the leaked role loses its password and sessions; the other logs in."""
    _incident_on_db_password(
        tmp_path, postgres, openbao, monkeypatch, alternating=True, log_lines=root_logger_capture
    )


# -- SECRET_KEY, scan, a failing step (SECRET_BACKEND=env: no server) --------------------------


def _session_app(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """A Flask app with the extension, configured from ``environ`` as a pod's variables."""
    from yosai_secrets.manager import reset_default_manager

    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    reset_default_manager()
    return session_app()


def _whoami(app: Any, cookie: str) -> str:
    client = app.test_client()
    client.set_cookie("session", cookie)
    return str(client.get("/me").get_data(as_text=True))


def _env_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("YOSAI_ENV", "test")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(tmp_path / "no-config"))
    monkeypatch.chdir(tmp_path)
    fallbacks = json.dumps([PREVIOUS_KEY])
    return make_manifest(tmp_path, SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=fallbacks)


def test_leaked_secret_key_refuses_sessions_signed_before_and_scan_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No fallback is kept: cookies signed with the leaked or the previous key are refused."""
    manifest = _env_setup(tmp_path, monkeypatch)
    pod = {"SECRET_KEY": OLD_KEY, "SECRET_KEY_FALLBACKS": json.dumps([PREVIOUS_KEY])}
    app = _session_app(pod, monkeypatch)
    signed = session_cookie(app)
    old_app = _session_app({"SECRET_KEY": PREVIOUS_KEY, "SECRET_KEY_FALLBACKS": "[]"}, monkeypatch)
    signed_before = session_cookie(old_app)
    assert _whoami(app, signed) == _whoami(app, signed_before) == "alice"
    logs = tmp_path / "logs"
    logs.mkdir()
    leaked_b64 = base64.b64encode(OLD_KEY.encode()).decode()
    (logs / "app.log").write_text(f"boot\nconfig dump: {leaked_b64}\n", encoding="utf-8")
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.delenv("SECRET_KEY_FALLBACKS")
    audit_log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("YOSAI_AUDIT_LOG", str(audit_log))
    args = ["SECRET_KEY", "--manifest", str(manifest), "--no-apply", "--logs", str(logs)]

    result = _run([*args, "--reason", "INC-7: key in a log"])

    assert result.exit_code == 0, result.output
    after = values(manifest)
    assert after["SECRET_KEY"] != OLD_KEY and json.loads(after["SECRET_KEY_FALLBACKS"]) == []
    new_app = _session_app(
        {"SECRET_KEY": after["SECRET_KEY"], "SECRET_KEY_FALLBACKS": after["SECRET_KEY_FALLBACKS"]},
        monkeypatch,
    )
    assert _whoami(new_app, signed) == "anonymous"
    assert _whoami(new_app, signed_before) == "anonymous"
    data, markdown = _report(tmp_path)
    statuses = _statuses(data)
    assert statuses["deliver to the cluster"] == "manual"  # --no-apply: the report says so
    assert statuses["scan"] == "done"
    finding = data["findings"][0]
    assert finding["path"].endswith("app.log") and finding["line"] == 2
    assert (finding["secret"], finding["encoding"]) == ("SECRET_KEY", "base64")
    assert finding["live"] is False  # rotated: the value found no longer works
    assert "app.log" in markdown and "rotate --restart" in markdown
    assert "Notify the security team" in markdown
    assert statuses["audit summary"] == "done" and "SECRET_KEY" in data["audit_summary"]
    events = [json.loads(line) for line in audit_log.read_text(encoding="utf-8").splitlines()]
    recorded = [(e.get("action"), e.get("outcome"), e.get("reason")) for e in events]
    assert ("incident", "done", "INC-7: key in a log") in recorded
    assert ("rotate-incident", "finished", "INC-7: key in a log") in recorded
    texts = [result.output, markdown, json.dumps(data), audit_log.read_text(encoding="utf-8")]
    _assert_no_value(texts, OLD_KEY, PREVIOUS_KEY, leaked_b64, after["SECRET_KEY"])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_failed_step_is_reported_and_the_others_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notify URL that is down fails its step (exit 1); rotation, scan and report still run."""
    manifest = _env_setup(tmp_path, monkeypatch)
    monkeypatch.setenv("ROTATION_NOTIFY_URLS", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("ROTATION_NOTIFY_TOKEN", "notify-token-" + "t" * 32)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "clean.log").write_text("nothing here\n", encoding="utf-8")
    args = ["SECRET_KEY", "--manifest", str(manifest), "--no-apply", "--logs", str(logs), "--json"]

    result = _run([*args, "--reason", "key pasted in a ticket"])

    assert result.exit_code == 1
    data = json.loads(result.stdout)
    statuses = _statuses(data)
    assert statuses["tell running processes"] == "failed"
    assert statuses["rotate"] == "done" and statuses["scan"] == "done"
    assert statuses["record"] == "done"
    assert data["failed"] == ["tell running processes"]
    assert data["reason"] == "key pasted in a ticket"
    assert values(manifest)["SECRET_KEY"] != OLD_KEY
    on_disk, markdown = _report(tmp_path)
    assert on_disk["exit_code"] == 1 and "FAILED" in markdown
    assert "tell running processes: FAILED" in result.stderr


def test_refused_before_anything_started_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A --logs path that does not exist: exit 2, the manifest untouched, no report."""
    manifest = _env_setup(tmp_path, monkeypatch)
    original = manifest.read_bytes()
    result = _run(["SECRET_KEY", "--manifest", str(manifest), "--logs", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "--logs" in result.stderr
    assert manifest.read_bytes() == original
    assert not list(tmp_path.glob("incident-*"))


# -- AWS -----------------------------------------------------------------------------------------


@pytest.mark.integration
def test_aws_leaked_version_loses_every_label(
    tmp_path: Path, aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS: the version holding the leaked key ends with no label (AWSPREVIOUS and custom)."""
    prefix = f"incident-{uuid.uuid4().hex[:10]}/"
    monkeypatch.setenv("SECRET_NAME_PREFIX", prefix)
    client = aws_env.client()
    made = client.create_secret(Name=prefix + "SECRET_KEY", SecretString=OLD_KEY)
    client.update_secret_version_stage(
        SecretId=prefix + "SECRET_KEY", VersionStage="OPS-PINNED", MoveToVersionId=made["VersionId"]
    )
    client.create_secret(Name=prefix + "SECRET_KEY_FALLBACKS", SecretString="[]")
    manifest = _env_setup(tmp_path, monkeypatch)

    result = _run(["SECRET_KEY", "--manifest", str(manifest), "--no-apply"])

    assert result.exit_code == 0, result.output
    secret_id = prefix + "SECRET_KEY"
    versions = client.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)
    stages = {v["VersionId"]: v.get("VersionStages", []) for v in versions["Versions"]}
    assert stages[made["VersionId"]] == []
    current = client.get_secret_value(SecretId=prefix + "SECRET_KEY", VersionStage="AWSCURRENT")[
        "SecretString"
    ]
    assert current == values(manifest)["SECRET_KEY"] != OLD_KEY
    # What the emulator still does (AWS too, until it deletes the deprecated version): it answers
    # a read by version id. docs/incident-response.md says so.
    by_id = client.get_secret_value(SecretId=prefix + "SECRET_KEY", VersionId=made["VersionId"])
    assert by_id["SecretString"] == OLD_KEY
    data, _ = _report(tmp_path)
    assert "lost every label" in " ".join(data["purged"])


# -- the admin URL's port (issue 12, class 15) -------------------------------------------------


@pytest.mark.parametrize("port", ["notaport", "99999", "", "0"])
def test_admin_url_with_a_bad_port_is_a_configuration_error(port: str, canary: str) -> None:
    """A bad port is our error naming the variable, never the password (was a ValueError)."""
    with pytest.raises(ConfigurationError, match="ROTATION_DATABASE_URL") as info:
        PostgresRoles(f"postgresql://admin:{canary}@db.internal:{port}/postgres")
    assert canary not in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


# -- Auth0 (a local stand-in of the Management API: Auth0 cannot run here) ---------------------


@pytest.mark.integration
def test_leaked_auth0_secret_is_rotated_stored_and_delivered(
    tmp_path: Path, openbao: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stand-in tenant rotates it; the new secret reaches the manifest, Vault, the cluster."""
    from tests.auth0_mgmt_standin import Auth0MgmtStandin

    tenant = Auth0MgmtStandin()
    try:
        leaked = "auth0-secret-" + secrets.token_urlsafe(32)
        key = secrets.token_urlsafe(48)
        vault_path = _vault_path(
            openbao, monkeypatch, {"SECRET_KEY": key, "AUTH0_CLIENT_SECRET": leaked}
        )
        manifest = make_manifest(tmp_path, SECRET_KEY=key, AUTH0_CLIENT_SECRET=leaked)
        _, state = stub_cluster(tmp_path, monkeypatch, manifest)
        environ = {**_vault_environ(openbao, vault_path), **tenant.environ()}
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        reports = tmp_path / "reports"

        result = _run(
            [
                "AUTH0_CLIENT_SECRET,SECRET_KEY",
                "--manifest",
                str(manifest),
                "--report-dir",
                str(reports),
            ]
        )

        assert result.exit_code == 0, result.output
        [new] = tenant.new_secrets
        assert values(manifest)["AUTH0_CLIENT_SECRET"] == new
        assert live_values(state)["AUTH0_CLIENT_SECRET"] == new  # the rotation's apply took it
        status, answer = openbao.api("GET", vault_path)
        assert status == 200 and answer["data"]["data"]["AUTH0_CLIENT_SECRET"] == new
        meta = _vault_versions(openbao, vault_path)
        old = [v for n, v in meta["versions"].items() if int(n) != meta["current_version"]]
        assert old and all(v["destroyed"] for v in old)
        data, markdown = _report(reports)
        assert _statuses(data)["rotate the Auth0 client secret"] == "done"
        texts = [result.output, markdown, json.dumps(data)]
        _assert_no_value(texts, leaked, new, tenant.mgmt_client_secret, tenant.access_token, key)
    finally:
        tenant.close()


# -- resuming, and an open routine rotation ----------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("step", ["db-set", "db-cut", "apply", "finish-store"])
def test_interrupted_incident_is_resumed_by_running_it_again(
    tmp_path: Path, postgres: Any, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """Killed after a step, the same incident run again completes it; the old password is dead."""
    from yosai_secrets.rotation import RotationEngine, RotationOptions

    from .rotation_support import Killed, crash_after

    role, leaked = _make_role(postgres)
    manifest = make_manifest(tmp_path, SECRET_KEY=OLD_KEY, DB_USER=role, DB_PASSWORD=leaked)
    stub_cluster(tmp_path, monkeypatch, manifest)

    def options(**kw: Any) -> RotationOptions:
        return RotationOptions(
            manifest=manifest, keys=["DB_PASSWORD"], database_url=postgres.url(), environ={}, **kw
        )

    with pytest.raises(Killed):
        RotationEngine(options(after_step=crash_after(step))).incident()
    report = RotationEngine(options()).incident()

    assert report.outcome == "finished" and report.resumed
    assert not journal_path(manifest).exists()
    assert not can_login(postgres, role, leaked)
    assert can_login(postgres, role, values(manifest)["DB_PASSWORD"])


def test_an_open_routine_rotation_fails_the_rotate_step_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A routine rotation waiting for --finish: the rotate step fails and says what to run."""
    from yosai_secrets.rotation import RotationEngine, RotationOptions

    manifest = _env_setup(tmp_path, monkeypatch)
    RotationEngine(RotationOptions(manifest=manifest, apply=False, environ={})).rotate()
    current = values(manifest)["SECRET_KEY"]
    (tmp_path / "app.log").write_text(f"key={current}\n", encoding="utf-8")
    args = ["--no-apply", "--json", "--logs", str(tmp_path / "app.log")]
    result = _run(["SECRET_KEY", "--manifest", str(manifest), *args])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    rotate = next(s for s in data["steps"] if s["step"] == "rotate")
    assert rotate["status"] == "failed" and "rotate --abort" in rotate["detail"]
    [finding] = data["findings"]
    assert finding["live"] is True  # not replaced: the value found still works
    assert current not in result.output
    assert _statuses(data)["record"] == "done"
    assert journal_path(manifest).exists()  # the routine rotation is left as it was


@pytest.mark.integration
def test_single_role_without_a_cluster_still_cuts_the_leaked_password(
    tmp_path: Path, postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--no-apply: unlike a routine rotation (it holds), the password changes and sessions end."""
    import psycopg

    role, leaked = _make_role(postgres)
    manifest = make_manifest(tmp_path, SECRET_KEY=OLD_KEY, DB_USER=role, DB_PASSWORD=leaked)
    monkeypatch.setenv("ROTATION_DATABASE_URL", postgres.url())
    monkeypatch.chdir(tmp_path)
    session = psycopg.connect(postgres.dsn(user=role, password=leaked), autocommit=True)

    result = _run(["DB_PASSWORD", "--manifest", str(manifest), "--no-apply"])

    assert result.exit_code == 0, result.output
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()
    assert not can_login(postgres, role, leaked)
    assert can_login(postgres, role, values(manifest)["DB_PASSWORD"])
    data, _ = _report(tmp_path)
    statuses = _statuses(data)
    assert statuses["cut the leaked database credential"] == "done"
    assert statuses["deliver to the cluster"] == "manual"
    assert any("rotate --restart" in step for step in data["manual_steps"])
