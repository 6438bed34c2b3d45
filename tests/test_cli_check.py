"""yosai-secrets check and dev-secrets: rows, sources, exit codes, and no value in the output."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from yosai_secrets.cli import cli

SIX = (
    "SECRET_KEY",
    "DB_PASSWORD",
    "AUTH0_CLIENT_ID",
    "AUTH0_CLIENT_SECRET",
    "AUTH0_DOMAIN",
    "AUTH0_AUDIENCE",
)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty directory, so no repository configuration or secrets/ is picked up."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(tmp_path / "no-config"))
    return tmp_path


@pytest.mark.usefixtures("in_tmp")
def test_check_development_needs_only_secret_key(
    monkeypatch: pytest.MonkeyPatch, canary: str
) -> None:
    """In development only SECRET_KEY is required; the output names its source, not its value."""
    monkeypatch.setenv("SECRET_KEY", canary)
    result = CliRunner().invoke(cli, ["check", "--env", "development"])
    assert result.exit_code == 0, result.output
    for name in SIX:
        assert name in result.output
    assert "env SECRET_KEY" in result.output
    assert canary not in result.output


@pytest.mark.usefixtures("in_tmp")
def test_check_production_requires_all_six(monkeypatch: pytest.MonkeyPatch, canary: str) -> None:
    """In production a missing DB_PASSWORD makes check exit 1 and name it."""
    monkeypatch.setenv("SECRET_KEY", canary)
    result = CliRunner().invoke(cli, ["check", "--env", "production"])
    assert result.exit_code == 1
    assert "DB_PASSWORD" in result.output
    assert "missing" in result.output
    assert canary not in result.output


@pytest.mark.usefixtures("in_tmp")
def test_check_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, canary: str) -> None:
    """--json prints one object per secret with status and source, and no value."""
    secret_file = tmp_path / "pw"
    secret_file.write_text(canary)
    monkeypatch.setenv("SECRET_KEY", canary + "k")
    monkeypatch.setenv("DB_PASSWORD_FILE", str(secret_file))
    result = CliRunner().invoke(cli, ["check", "--env", "test", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    rows = {row["name"]: row for row in data["secrets"]}
    assert set(rows) == set(SIX)
    assert rows["SECRET_KEY"]["status"] == "found"
    assert rows["DB_PASSWORD"]["status"] == "found"
    assert str(secret_file) in json.dumps(rows["DB_PASSWORD"])
    assert rows["AUTH0_DOMAIN"]["status"] == "missing"
    assert canary not in result.output


@pytest.mark.usefixtures("in_tmp")
def test_check_missing_secret_key_fails_everywhere() -> None:
    """Without SECRET_KEY, check fails in every environment."""
    for env in ("development", "test", "staging", "production"):
        result = CliRunner().invoke(cli, ["check", "--env", env, "--json"])
        assert result.exit_code == 1, env


@pytest.mark.usefixtures("in_tmp")
def test_check_unknown_backend_is_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """A configuration error is one clear line and exit status 2."""
    monkeypatch.setenv("SECRET_BACKEND", "nope")
    result = CliRunner().invoke(cli, ["check", "--env", "development"])
    assert result.exit_code == 2
    assert "valid backends are" in result.output
    assert "Traceback" not in result.output


def test_dev_secrets_generates_private_files(in_tmp: Path) -> None:
    """dev-secrets writes secret_key.txt and db_password.txt with mode 0600, never overwriting."""
    runner = CliRunner()
    result = runner.invoke(cli, ["dev-secrets", "--dir", "secrets"])
    assert result.exit_code == 0, result.output
    key_file = in_tmp / "secrets" / "secret_key.txt"
    pw_file = in_tmp / "secrets" / "db_password.txt"
    for path in (key_file, pw_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(path.read_text().strip()) >= 43
    before = key_file.read_text()
    assert before.strip() not in result.output
    runner.invoke(cli, ["dev-secrets", "--dir", "secrets"])
    assert key_file.read_text() == before


def test_development_check_uses_generated_files(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After dev-secrets, check in development finds SECRET_KEY in secrets/secret_key.txt."""
    monkeypatch.setenv("YOSAI_ENV", "development")
    runner = CliRunner()
    runner.invoke(cli, ["dev-secrets"])
    result = runner.invoke(cli, ["check", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)["secrets"]}
    assert "secret_key.txt" in json.dumps(rows["SECRET_KEY"])


def test_get_masks_unless_revealed(monkeypatch: pytest.MonkeyPatch, canary: str) -> None:
    """get prints the source and a mask; --reveal prints the value itself."""
    monkeypatch.setenv("API_TOKEN", canary)
    runner = CliRunner()
    masked = runner.invoke(cli, ["get", "API_TOKEN"])
    assert masked.exit_code == 0, masked.output
    assert canary not in masked.output
    assert "env API_TOKEN" in masked.output
    revealed = runner.invoke(cli, ["get", "API_TOKEN", "--reveal"])
    assert revealed.output.strip() == canary


@pytest.mark.parametrize(
    ("key", "setup", "expected"),
    [
        ("MISSING_KEY", None, "was not found"),
        ("../etc/passwd", None, "cannot be used as a file name"),
        ("BIN", b"\xff\xfe binary", "not UTF-8"),
        ("HUGE", b"x" * 70000, "limit"),
    ],
)
def test_get_bad_input_is_one_clear_line(
    tmp_path: Path, key: str, setup: bytes | None, expected: str
) -> None:
    """Bad input gets exit status 2 and one clear line naming the key or file, no traceback."""
    if setup is not None:
        (tmp_path / "run-secrets").mkdir(exist_ok=True)
        (tmp_path / "run-secrets" / key.lower()).write_bytes(setup)
    result = CliRunner().invoke(cli, ["get", key])
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output


def test_env_option_turns_on_development_files(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--env development alone (YOSAI_ENV unset) reads secrets/*.txt, as YOSAI_ENV would."""
    runner = CliRunner()
    runner.invoke(cli, ["dev-secrets"])
    result = runner.invoke(cli, ["check", "--env", "development", "--json"])
    assert result.exit_code == 0, result.output


@pytest.mark.usefixtures("in_tmp")
def test_check_reports_placeholders_as_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """replace-me-* values are 'missing' (not set) in check, refused in production, never shown."""
    monkeypatch.setenv("SECRET_KEY", "a-real-key-" + "k" * 40)
    monkeypatch.setenv("DB_PASSWORD", "replace-me-db-password")
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", "Replace-Me-auth0-client-secret")
    result = CliRunner().invoke(cli, ["check", "--env", "production", "--json"])
    assert result.exit_code == 1
    document = json.loads(result.output)
    rows = {row["name"]: row for row in document["secrets"]}
    for name in ("DB_PASSWORD", "AUTH0_CLIENT_SECRET"):
        assert rows[name]["status"] == "missing"
        assert rows[name]["note"] == "not set (it holds the example's placeholder)"
        assert rows[name]["source"] == f"env {name}"
    assert any(
        "DB_PASSWORD is required in production but is not set" in p for p in document["problems"]
    )
    assert "replace-me" not in result.output.lower()
    table = CliRunner().invoke(cli, ["check", "--env", "production"])
    assert "holds the example's placeholder" in table.output
    assert "replace-me" not in table.output.lower()


@pytest.mark.usefixtures("in_tmp")
def test_check_development_reports_a_placeholder_secret_key_as_not_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In development a placeholder SECRET_KEY is a missing row (check fails), not a refusal."""
    monkeypatch.setenv("SECRET_KEY", "replace-me-secret-key")
    monkeypatch.setenv("DB_PASSWORD", "replace-me-db-password")  # not required here: a row only
    result = CliRunner().invoke(cli, ["check", "--env", "development", "--json"])
    assert result.exit_code == 1
    document = json.loads(result.output)
    rows = {row["name"]: row for row in document["secrets"]}
    assert rows["SECRET_KEY"]["status"] == rows["DB_PASSWORD"]["status"] == "missing"
    assert document["problems"] == []  # start-up refuses placeholders in production only
