"""The faces stay at the edge: the Flask extension loads no CLI, rotation or rich, and the
``flask secrets`` commands reach Flask through the ``flask.commands`` entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

_APP_MODULE = """\
from flask import Flask

from yosai_secrets.flask import YosaiSecrets

app = Flask(__name__)
YosaiSecrets(app)
"""

_INIT_APP = """\
import json
import sys

from flask import Flask

from yosai_secrets.flask import YosaiSecrets

app = Flask("faces")
YosaiSecrets(app)
assert app.config["SECRET_KEY"]
print(json.dumps(sorted(sys.modules)))
"""


def _development_environ(tmp_path: Path) -> dict[str, str]:
    """A development environment: the shipped configuration, SECRET_KEY set, no FLASK_APP."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    environ.update(
        YOSAI_ENV="development",
        YOSAI_CONFIG_DIR=str(REPO_ROOT / "config"),
        YOSAI_LOCAL_SECRETS_DIR=str(tmp_path / "secrets"),
        SECRET_KEY="faces-" + os.urandom(24).hex(),
        PYTHONPATH=str(REPO_ROOT / "src"),
    )
    return environ


def _run(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=tmp_path,
        env=_development_environ(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _flask(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``flask`` command line (Flask's own, with its plugin commands) in ``tmp_path``."""
    found = {ep.name: ep.value for ep in metadata.entry_points(group="flask.commands")}
    assert found.get("secrets") == "yosai_secrets.cli.flask_group:secrets_group", (
        "the flask.commands entry point is not installed: re-install the project "
        "(uv sync --inexact --all-extras --group dev)"
    )
    return _run([sys.executable, "-m", "flask", *args], tmp_path)


def test_init_app_loads_no_cli_rotation_or_rich(tmp_path: Path) -> None:
    """A fresh process running init_app has loaded no module of the CLI, rotation or rich."""
    result = _run([sys.executable, "-c", _INIT_APP], tmp_path)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])
    forbidden = [
        name
        for name in loaded
        if name.split(".")[0] == "rich"
        or name.startswith(("yosai_secrets.cli", "yosai_secrets.rotation"))
    ]
    assert forbidden == []
    ours = [name for name in loaded if name.split(".")[0] == "yosai_secrets"]
    assert "yosai_secrets.flask" in ours
    print("yosai_secrets modules loaded after init_app:", *ours, sep="\n  ")


def test_flask_secrets_help_lists_the_commands_through_the_entry_point(tmp_path: Path) -> None:
    """`flask --app <module> secrets --help` lists every subcommand, found by the entry point."""
    (tmp_path / "faces_app.py").write_text(_APP_MODULE, encoding="utf-8")
    result = _flask(tmp_path, "--app", "faces_app", "secrets", "--help")
    assert result.returncode == 0, result.stderr
    listed = result.stdout.split("Commands:", 1)[1]
    for command in ("check", "dev-secrets", "get", "invalidate", "rotate", "serve", "status"):
        assert f"  {command} " in listed


@pytest.mark.parametrize("module", ["app", "wsgi"])
def test_flask_secrets_invalidate_finds_the_app_without_flask_app(
    tmp_path: Path, module: str
) -> None:
    """`flask secrets invalidate`, FLASK_APP unset, loads the app.py or wsgi.py of the directory."""
    (tmp_path / f"{module}.py").write_text(_APP_MODULE, encoding="utf-8")
    result = _flask(tmp_path, "secrets", "invalidate")
    assert result.returncode == 0, result.stderr
    assert f"cached path(s) in this process (app {module})" in result.stdout
