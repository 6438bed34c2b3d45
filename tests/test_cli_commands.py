"""Every command the design names is reachable from the ``yosai-secrets`` entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from yosai_secrets.cli import cli

COMMANDS = ("check", "get", "rotate", "status", "scan", "audit", "incident", "encrypt", "serve")


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_in_the_group(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: cli {name}" in result.output or f"yosai-secrets {name}" in result.output


def test_scan_through_the_installed_entry_point(tmp_path: Path, canary: str) -> None:
    """The console script runs the scan: a planted AWS access key id is found, never printed."""
    key_id = "AKIA" + "QX7T2LMZ4WB6NRC3"
    (tmp_path / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{key_id}"\n', encoding="utf-8")
    done = subprocess.run(
        [Path(sys.executable).with_name("yosai-secrets"), "scan", "--no-values", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "aws-access-key" in done.stdout and key_id not in done.stdout + done.stderr
