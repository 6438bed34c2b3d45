"""Shared fixtures: an isolated environment for every test, and the real servers.

Servers (OpenBao, moto's AWS emulator, PostgreSQL) live in ``tests/servers/`` as pytest plugins;
each starts on a free 127.0.0.1 port once per session, on first use, and is stopped by process id.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from yosai_secrets import secret as secret_module
from yosai_secrets.manager import reset_default_manager

pytest_plugins = [
    "tests.servers.openbao",
    "tests.servers.moto",
    "tests.servers.postgres",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

# Variables a developer's shell or CI may set that would change what a test sees.
_ISOLATED_PREFIXES = ("SECRET", "DB_", "AUTH0_", "VAULT_", "AWS_", "YOSAI_", "FERNET_", "ROTATION_")


@pytest.fixture(autouse=True)
def isolated_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Give each test an environment without our variables and a fresh default manager."""
    for name in list(os.environ):
        if name.startswith(_ISOLATED_PREFIXES) or name in {"SECRETS_DIR", "SECRET_BACKEND"}:
            monkeypatch.delenv(name, raising=False)
    # No test may read the machine's real Docker secrets directory by accident.
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path / "run-secrets"))
    reset_default_manager()
    yield
    reset_default_manager()


@pytest.fixture
def fresh_redaction() -> Iterator[None]:
    """Forget every value registered for redaction before and after the test."""
    secret_module._REGISTRY.clear()
    yield
    secret_module._REGISTRY.clear()


@pytest.fixture
def canary() -> str:
    """A unique value to plant as a secret and search for in every output."""
    return "canary-" + os.urandom(12).hex()


@pytest.fixture
def root_logger_capture() -> Iterator[list[str]]:
    """Capture what the root logger's handlers actually emit (after their filters)."""
    lines: list[str] = []

    class _ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = _ListHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)
