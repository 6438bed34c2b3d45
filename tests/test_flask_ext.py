"""The Flask extension: session keys from the secret sources, fallbacks, fail-closed start-up."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from flask import Flask

from tests.rotation_support import session_app, session_cookie, sighup_listener
from yosai_secrets.cli import cli
from yosai_secrets.cli.flask_group import secrets_group
from yosai_secrets.errors import ConfigurationError, StartupError, ValidationError
from yosai_secrets.flask import (
    StartupValidationError,
    YosaiSecrets,
    check_flask_version,
    current_extension,
    parse_fallbacks,
)
from yosai_secrets.manager import reset_default_manager

OLD_KEY = "old-key-" + "o" * 40
NEW_KEY = "new-key-" + "n" * 40


@pytest.fixture(autouse=True)
def _test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run in the test environment with an empty configuration directory."""
    monkeypatch.setenv("YOSAI_ENV", "test")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(tmp_path / "no-config"))


def _whoami(app: Flask, cookie: str) -> str:
    client = app.test_client()
    client.set_cookie("session", cookie)
    return client.get("/me").get_data(as_text=True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, []),
        ("", []),
        ("   ", []),
        (["a-key", "b-key"], ["a-key", "b-key"]),
        (("a-key",), ["a-key"]),
        ('["a-key", "b-key"]', ["a-key", "b-key"]),
        ("a-key,b-key", ["a-key", "b-key"]),
        ("a-key, b-key\n", ["a-key", "b-key"]),
        ("single-old-key", ["single-old-key"]),
        ("a-key,a-key", ["a-key"]),
    ],
)
def test_fallbacks_are_always_a_list_of_keys(raw: object, expected: list[str]) -> None:
    """Lists, JSON lists and comma-separated strings become lists; a bare string is one key."""
    assert parse_fallbacks(raw) == expected


@pytest.mark.parametrize("raw", ['["unclosed', '["a", 1]', "[1, 2]", 42])
def test_malformed_fallbacks_are_refused_without_echoing(raw: object) -> None:
    """A malformed SECRET_KEY_FALLBACKS is a ConfigurationError that does not show the value."""
    with pytest.raises(ConfigurationError) as info:
        parse_fallbacks(raw)
    if isinstance(raw, str):
        assert raw not in str(info.value)


def test_flask_older_than_3_1_1_is_refused() -> None:
    """Flask 3.1.0 (which signs with the last fallback) is refused with a clear error."""
    with pytest.raises(StartupError, match=r"3\.1\.1"):
        check_flask_version("3.1.0")
    assert check_flask_version("3.1.1") == "3.1.1"
    assert check_flask_version()  # the installed one is recent enough


def test_sets_secret_key_and_fallbacks_from_the_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """SECRET_KEY comes from the sources and SECRET_KEY_FALLBACKS is a list even from a string."""
    monkeypatch.setenv("SECRET_KEY", NEW_KEY)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", json.dumps([OLD_KEY]))
    app = Flask(__name__)
    ext = YosaiSecrets(app)
    assert app.config["SECRET_KEY"] == NEW_KEY
    assert app.config["SECRET_KEY_FALLBACKS"] == [OLD_KEY]
    assert current_extension(app) is ext
    assert NEW_KEY not in repr(ext)


def test_comma_separated_fallbacks_from_a_docker_secret_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Fallbacks read from a file (SECRET_KEY_FALLBACKS_FILE) may be comma-separated."""
    file = tmp_path / "fallbacks"
    file.write_text(f"{OLD_KEY},{OLD_KEY}x\n")
    monkeypatch.setenv("SECRET_KEY", NEW_KEY)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS_FILE", str(file))
    app = Flask(__name__)
    YosaiSecrets(app)
    assert app.config["SECRET_KEY_FALLBACKS"] == [OLD_KEY, OLD_KEY + "x"]


def test_missing_secret_key_is_a_runtime_error_naming_where_it_looked() -> None:
    """Without SECRET_KEY, init_app raises a RuntimeError (ours too) naming it and the places."""
    app = Flask(__name__)
    with pytest.raises(RuntimeError) as info:
        YosaiSecrets(app)
    assert isinstance(info.value, StartupError)
    message = str(info.value)
    assert "SECRET_KEY" in message
    assert "SECRET_KEY_FILE" in message
    assert "Docker secret" in message


def test_production_without_db_password_refuses_naming_it(
    monkeypatch: pytest.MonkeyPatch, canary: str
) -> None:
    """In production a missing DB_PASSWORD stops start-up with the configuration's error."""
    monkeypatch.setenv("YOSAI_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", canary + "k" * 32)
    for name in ("AUTH0_CLIENT_ID", "AUTH0_DOMAIN", "AUTH0_AUDIENCE"):
        monkeypatch.setenv(name, f"{name.lower()}-value")
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", canary + "-client-secret")
    with pytest.raises(ConfigurationError) as info:
        YosaiSecrets(Flask(__name__))
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value, ValidationError | StartupValidationError)
    assert "DB_PASSWORD" in str(info.value)
    assert canary not in str(info.value)


def test_session_survives_rotation_through_fallbacks_until_finish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cookie signed before a rotation is accepted after it (fallback), refused after finish."""
    monkeypatch.setenv("SECRET_KEY", OLD_KEY)
    cookie = session_cookie(session_app())

    # Rotated: the new key signs, the old one is a fallback (what `rotate` writes); the pods
    # restart, so each phase runs with a fresh process-wide manager.
    monkeypatch.setenv("SECRET_KEY", NEW_KEY)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", json.dumps([OLD_KEY]))
    reset_default_manager()
    rotated = session_app()
    assert rotated.config["SECRET_KEY"] == NEW_KEY
    assert _whoami(rotated, cookie) == "alice"
    fresh = session_cookie(rotated)

    # Finished: the fallback is dropped; old cookies are refused, new ones still work.
    monkeypatch.delenv("SECRET_KEY_FALLBACKS")
    reset_default_manager()
    finished = session_app()
    assert finished.config["SECRET_KEY_FALLBACKS"] == []
    assert _whoami(finished, cookie) == "anonymous"
    assert _whoami(finished, fresh) == "alice"


def test_new_sessions_are_signed_with_the_new_key_not_a_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """During a rotation new cookies are signed with SECRET_KEY (the bug of Flask 3.1.0)."""
    monkeypatch.setenv("SECRET_KEY", NEW_KEY)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", f"{OLD_KEY}")
    cookie = session_cookie(session_app())
    monkeypatch.delenv("SECRET_KEY_FALLBACKS")
    reset_default_manager()
    assert _whoami(session_app(), cookie) == "alice"


def test_clearing_caches_rereads_the_session_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a rotation, clear_caches() (what SIGHUP does) picks up the new key and fallbacks."""
    monkeypatch.setenv("SECRET_KEY", OLD_KEY)
    app = session_app()
    cookie = session_cookie(app)
    monkeypatch.setenv("SECRET_KEY", NEW_KEY)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", OLD_KEY)
    current_extension(app).clear_caches()
    assert app.config["SECRET_KEY"] == NEW_KEY
    assert app.config["SECRET_KEY_FALLBACKS"] == [OLD_KEY]
    assert _whoami(app, cookie) == "alice"


def test_dash_app_uses_it_through_its_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Dash app gets its session key by initialising the extension on dash_app.server."""
    import dash

    monkeypatch.setenv("SECRET_KEY", NEW_KEY)
    board = dash.Dash(__name__, server=Flask(__name__))
    YosaiSecrets(board.server)
    assert board.server.config["SECRET_KEY"] == NEW_KEY


def test_log_redaction_is_installed(
    monkeypatch: pytest.MonkeyPatch, root_logger_capture: list[str]
) -> None:
    """After init_app, the session key logged by mistake appears masked."""
    monkeypatch.setenv("SECRET_KEY", NEW_KEY)
    app = Flask(__name__)
    YosaiSecrets(app)
    app.logger.warning("key is %s", NEW_KEY)
    logging.getLogger("some.library").error("oops " + NEW_KEY)
    assert root_logger_capture
    assert all(NEW_KEY not in line for line in root_logger_capture)


def test_flask_secrets_commands_mirror_yosai_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """`flask secrets` holds every yosai-secrets command plus invalidate, which clears the app."""
    monkeypatch.setenv("SECRET_KEY", NEW_KEY)
    app = Flask(__name__)
    YosaiSecrets(app)
    assert "secrets" not in app.cli.commands  # it comes through the flask.commands entry point
    assert set(secrets_group.commands) == {*cli.commands, "invalidate"}
    assert all(secrets_group.commands[name] is command for name, command in cli.commands.items())
    runner = app.test_cli_runner()
    checked = runner.invoke(secrets_group, ["check", "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output)["ok"] is True
    assert NEW_KEY not in checked.output
    monkeypatch.setenv("SECRET_KEY", OLD_KEY)
    invalidated = runner.invoke(secrets_group, ["invalidate"])
    assert invalidated.exit_code == 0, invalidated.output
    assert "cached path(s)" in invalidated.output
    assert app.config["SECRET_KEY"] == OLD_KEY  # the app's extension re-read its key


def test_flask_secrets_invalidate_needs_the_extension_on_the_app() -> None:
    """`flask secrets invalidate` on an app without YosaiSecrets exits 2 naming init_app."""
    result = Flask(__name__).test_cli_runner().invoke(secrets_group, ["invalidate"])
    assert result.exit_code == 2
    assert "init_app" in result.output
    assert "Traceback" not in result.output


def test_flask_secrets_invalidate_signals_a_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`flask secrets invalidate --pidfile` sends SIGHUP to the server process named there."""
    monkeypatch.setenv("SECRET_KEY", NEW_KEY)
    app = Flask(__name__)
    YosaiSecrets(app)
    # A stand-in server: SIGHUP's default action ends it, so its exit status proves delivery.
    child = sighup_listener()
    try:
        pidfile = tmp_path / "server.pid"
        pidfile.write_text(f"{child.pid}\n")
        result = app.test_cli_runner().invoke(
            secrets_group, ["invalidate", "--pidfile", str(pidfile)]
        )
        assert result.exit_code == 0, result.output
        assert child.wait(timeout=10) == -signal.SIGHUP
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_session_survives_a_real_rotation_until_finish(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With `yosai-secrets rotate` on a manifest: old cookies work after it, not after --finish."""
    manifest = tmp_path / "api-secrets.yaml"
    example = Path(__file__).resolve().parent.parent / "k8s/config/api-secrets.example.yaml"
    if not example.exists():
        pytest.skip("the rotation's example manifest is not in this checkout")
    shutil.copy(example, manifest)
    # An operator's real key: the example's placeholder is never kept as a fallback (issue 12).
    real_key = "operator-key-" + os.urandom(20).hex()
    manifest.write_text(manifest.read_text().replace("replace-me-secret-key", real_key))

    def restart_pod() -> Flask:
        # What a restarted pod sees: the manifest's stringData as variables, a fresh process.
        data = yaml.safe_load(manifest.read_text())["stringData"]
        for name in ("SECRET_KEY", "SECRET_KEY_FALLBACKS"):
            monkeypatch.setenv(name, data[name])
        reset_default_manager()
        return session_app()

    def rotate(*extra: str) -> None:
        args = ["rotate", "--manifest", str(manifest), "--keys", "SECRET_KEY", "--no-apply"]
        result = CliRunner().invoke(cli, [*args, *extra])
        assert result.exit_code == 0, result.output

    before = restart_pod()
    cookie = session_cookie(before)
    rotate()
    during = restart_pod()
    assert during.config["SECRET_KEY"] != before.config["SECRET_KEY"]
    assert during.config["SECRET_KEY_FALLBACKS"] == [before.config["SECRET_KEY"]]
    assert _whoami(during, cookie) == "alice"
    rotate("--finish", "--now", "--skip-cluster-check")  # no cluster here to check
    after = restart_pod()
    assert after.config["SECRET_KEY_FALLBACKS"] == []
    assert _whoami(after, cookie) == "anonymous"


def test_app_given_fallbacks_are_kept_as_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fallbacks the app was given itself survive init_app, a bare string as one key."""
    from flask import Flask

    from yosai_secrets.flask import YosaiSecrets

    monkeypatch.setenv("YOSAI_ENV", "development")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    app = Flask("fallbacks")
    app.config["SECRET_KEY_FALLBACKS"] = "single-old-key-value"
    YosaiSecrets(app)
    assert app.config["SECRET_KEY_FALLBACKS"] == ["single-old-key-value"]


def test_a_cookie_forged_with_the_example_placeholder_is_refused_after_rotation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The first rotation from the example manifest keeps no placeholder as a fallback key."""
    manifest = tmp_path / "api-secrets.yaml"
    example = Path(__file__).resolve().parent.parent / "k8s/config/api-secrets.example.yaml"
    shutil.copy(example, manifest)
    monkeypatch.setenv("SECRET_KEY", "replace-me-secret-key")
    monkeypatch.setenv("YOSAI_ENV", "development")
    forged = session_cookie(session_app())  # signed with the public placeholder
    args = ["rotate", "--manifest", str(manifest), "--keys", "SECRET_KEY", "--no-apply"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(manifest.read_text())["stringData"]
    assert "replace-me" not in data["SECRET_KEY_FALLBACKS"]
    for name in ("SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        monkeypatch.setenv(name, data[name])
    reset_default_manager()
    assert _whoami(session_app(), forged) == "anonymous"
