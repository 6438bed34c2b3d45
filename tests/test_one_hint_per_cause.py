"""One hint per cause: keys that fail for the same reason are named together, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from yosai_secrets.cli import cli
from yosai_secrets.config import SecureConfigManager
from yosai_secrets.config.resolve import group_problems
from yosai_secrets.errors import ValidationError

REPO_ROOT = Path(__file__).resolve().parent.parent
SIX = (
    "SECRET_KEY",
    "DB_PASSWORD",
    "AUTH0_CLIENT_ID",
    "AUTH0_CLIENT_SECRET",
    "AUTH0_DOMAIN",
    "AUTH0_AUDIENCE",
)
# A phrase of the Vault hint that appears nowhere else in the output.
HINT = "VAULT_K8S_ROLE"


@pytest.fixture
def unconfigured_vault(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Production, SECRET_BACKEND=vault, the shipped configuration, and nothing else set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SECRET_BACKEND", "vault")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(REPO_ROOT / "config"))


def test_group_problems_keeps_distinct_causes_and_merges_shared_ones() -> None:
    """A cause met once keeps its line; a shared cause becomes one line naming each subject."""
    lines = group_problems(
        [
            ("a (A): reference vault:x#a (backend vault)", "Vault is down"),
            ("b (B): reference aws-secrets:b (backend aws)", "no region"),
            ("c (C): reference vault:x#c (backend vault)", "Vault is down"),
            ("c (C): reference vault:x#c (backend vault)", "Vault is down"),
        ]
    )
    assert lines == [
        "2 settings fail for one reason (a (A): reference vault:x#a (backend vault); "
        "c (C): reference vault:x#c (backend vault)): Vault is down",
        "b (B): reference aws-secrets:b (backend aws): no region",
    ]


@pytest.mark.usefixtures("unconfigured_vault")
def test_secure_config_manager_gives_the_vault_hint_once() -> None:
    """SecureConfigManager reports an unconfigured Vault in one problem naming all six keys."""
    with pytest.raises(ValidationError) as info:
        SecureConfigManager()
    message = str(info.value)
    assert message.count(HINT) == 1, message
    assert len(info.value.problems) == 1
    for name in SIX:
        assert f"({name})" in info.value.problems[0]


@pytest.mark.usefixtures("unconfigured_vault")
def test_check_prints_the_hint_once_and_agrees_with_its_table() -> None:
    """check prints the hint once; table and summary both call the six secrets "error"."""
    result = CliRunner().invoke(cli, ["check", "--env", "production"])
    assert result.exit_code == 1
    out = result.output
    assert out.count(HINT) == 1, out
    assert "missing required" not in out
    summary = next(line for line in out.splitlines() if line.startswith("required secret(s)"))
    assert summary == f"required secret(s) in error: {', '.join(SIX)}"
    report = json.loads(CliRunner().invoke(cli, ["check", "--env", "production", "--json"]).output)
    assert {row["status"] for row in report["secrets"]} == {"error"}
    assert len(report["problems"]) == 1 and report["ok"] is False


def test_an_unreachable_vault_is_error_in_table_and_summary(
    unconfigured_vault: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Vault nobody answers at makes every row "error" and the summary says so, not "missing"."""
    from tests.servers.process import free_port

    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("VAULT_TOKEN", "not-a-real-token")
    result = CliRunner().invoke(cli, ["check", "--env", "production"])
    assert result.exit_code == 1
    assert "missing" not in result.output
    assert f"required secret(s) in error: {', '.join(SIX)}" in result.output
    assert "not-a-real-token" not in result.output
