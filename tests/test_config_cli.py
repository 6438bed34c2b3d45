"""yosai-secrets check reads the configuration: references resolved, sources shown, no value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from yosai_secrets.cli import cli

STRONG = "Zq8vN2kP5tR7wY1aB4cD6eF9gH3jK0mLxQ"


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty configuration directory named by YOSAI_CONFIG_DIR."""
    folder = tmp_path / "conf"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(folder))
    return folder


def test_check_shows_reference_sources(
    conf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, canary: str
) -> None:
    """Secrets set by env: and file: references in the YAML are found, and sources name them."""
    pw_file = tmp_path / "db_pw"
    pw_file.write_text(canary + "-db\n")
    (conf / "staging.yaml").write_text(
        f"security: {{secret_key: 'env:APP_KEY'}}\ndatabase: {{password: 'file:{pw_file}'}}\n"
    )
    monkeypatch.setenv("APP_KEY", canary + "-key")
    result = CliRunner().invoke(cli, ["check", "--env", "staging", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)["secrets"]}
    assert rows["SECRET_KEY"]["source"] == "env APP_KEY"
    assert rows["DB_PASSWORD"]["source"] == f"file {pw_file}"
    assert canary not in result.output


def test_check_reports_a_broken_reference(
    conf: Path, monkeypatch: pytest.MonkeyPatch, canary: str
) -> None:
    """A reference that does not resolve is an error row with the reason, and exit 1."""
    (conf / "test.yaml").write_text("database: {password: 'env:NOT_THERE'}\n")
    monkeypatch.setenv("SECRET_KEY", canary)
    result = CliRunner().invoke(cli, ["check", "--env", "test"])
    assert result.exit_code == 1
    assert "DB_PASSWORD" in result.output
    assert "env:NOT_THERE" in result.output
    assert canary not in result.output


def test_check_weak_key_in_production_fails(conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All six present but SECRET_KEY a placeholder: check exits 1 and says why."""
    for name in ("DB_PASSWORD", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET"):
        monkeypatch.setenv(name, "value-" + name)
    monkeypatch.setenv("AUTH0_DOMAIN", "t.auth0.com")
    monkeypatch.setenv("AUTH0_AUDIENCE", "https://api")
    monkeypatch.setenv("SECRET_KEY", "changeme")
    result = CliRunner().invoke(cli, ["check", "--env", "production", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False
    assert any("too weak" in p for p in data["problems"])


def test_check_bad_yaml_is_exit_2(conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A configuration file that is not safe YAML is a configuration error: one line, exit 2."""
    (conf / "test.yaml").write_text("a: !!python/object/apply:os.system ['true']\n")
    monkeypatch.setenv("SECRET_KEY", STRONG)
    result = CliRunner().invoke(cli, ["check", "--env", "test"])
    assert result.exit_code == 2
    assert "test.yaml" in result.output
    assert "Traceback" not in result.output
