"""Shared fixtures: an isolated environment for every test, and the real servers.

Servers (OpenBao, moto's AWS emulator, PostgreSQL) live in ``tests/servers/`` as pytest plugins;
each starts on a free 127.0.0.1 port once per session, on first use, and is stopped by process id.
Every test that uses one of them, however indirectly, is marked ``integration`` here, so that
``pytest -m "not integration"`` (``make test-fast``) starts no server. ``require()`` is how a test
meets a missing binary: a skip on a developer's machine, a failure under ``CI=true``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import settings

from yosai_secrets import manager as manager_module
from yosai_secrets import secret as secret_module
from yosai_secrets.manager import reset_default_manager

pytest_plugins = [
    "tests.canary_sweep",
    "tests.servers.openbao",
    "tests.servers.bao_proxy",
    "tests.servers.moto",
    "tests.servers.postgres",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

# The fixtures that start a real server (tests/servers/); tests that start one by hand (their own
# OpenBao or moto, gunicorn, a browser) carry the integration mark themselves.
SERVER_FIXTURES = frozenset({"openbao", "vault_env", "moto_server", "aws_env", "postgres"})

T = TypeVar("T")

# No example database: a saved failing example would replay on every later run (and land in the
# working tree); a real failure is printed with what reproduces it.
settings.register_profile("yosai", database=None)
settings.load_profile("yosai")

# Variables a developer's shell or CI may set that would change what a test sees.
_ISOLATED_PREFIXES = ("SECRET", "DB_", "AUTH0_", "VAULT_", "AWS_", "YOSAI_", "FERNET_", "ROTATION_")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark as integration every test whose fixture closure starts a real server."""
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def in_ci() -> bool:
    """Tell whether the suite runs in CI (``CI=true``, as ``.ci/run`` and CI services set)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(found: T | None, tool: str, how: str) -> T:
    """Return ``found``; when it is None, skip the test, or fail it under CI.

    CI must have every part the suite uses, so there a missing binary is a broken machine whose
    skips would hide untested code. ``tool`` names what is missing, ``how`` how to get it. Works
    in a fixture, a test or at module level (there, under CI, as a collection error).
    """
    if found is not None:
        return found
    if in_ci():
        pytest.fail(f"not installed: {tool} ({how}); CI=true, and CI must have it", pytrace=False)
    pytest.skip(f"not installed: {tool} ({how}); CI has it", allow_module_level=True)


@pytest.fixture(autouse=True)
def isolated_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Give each test an environment without our variables and a fresh default manager."""
    for name in list(os.environ):
        if name.startswith(_ISOLATED_PREFIXES) or name in {"SECRETS_DIR", "SECRET_BACKEND"}:
            monkeypatch.delenv(name, raising=False)
    # No test may read the machine's real Docker secrets directory by accident.
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path / "run-secrets"))
    reset_default_manager()
    # Values another test handed out would be masked in this test's messages ("value" -> ****).
    secret_module._REGISTRY.clear()
    yield
    manager = manager_module._DEFAULT.manager
    if manager is not None:  # its Vault renewer must not outlive the test
        manager.close()
    reset_default_manager()


@pytest.fixture
def fresh_redaction() -> Iterator[None]:
    """Forget every value registered for redaction before and after the test."""
    secret_module._REGISTRY.clear()
    yield
    secret_module._REGISTRY.clear()


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
