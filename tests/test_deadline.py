"""Every read has a deadline (SECRET_READ_TIMEOUT), waiters included, whatever the backend does."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from yosai_secrets.errors import BackendUnavailableError, ConfigurationError
from yosai_secrets.manager import DEFAULT_READ_TIMEOUT_SECONDS, SecretManager
from yosai_secrets.testing import FakeClock, MemoryBackend


class HungBackend(MemoryBackend):
    """A backend whose fetch blocks until released (a server that never answers)."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data, name="hung")
        self.release = threading.Event()
        self.hang = True
        self.calls = 0

    def fetch(self, path: str) -> Any:
        self.calls += 1
        if self.hang:
            self.release.wait(30)
        return super().fetch(path)


@pytest.fixture
def hung() -> Any:
    """A hung backend, released at the end of the test."""
    backend = HungBackend({"K": "v"})
    yield backend
    backend.release.set()


def test_a_hung_backend_fails_the_read_within_its_deadline(hung: HungBackend) -> None:
    """A cold read from a backend that never answers raises after read_timeout_seconds."""
    manager = SecretManager(hung, read_timeout_seconds=0.3)
    start = time.monotonic()
    with pytest.raises(BackendUnavailableError, match="SECRET_READ_TIMEOUT") as info:
        manager.get("K")
    assert time.monotonic() - start < 3.0  # 0.3 s, with room for a loaded machine
    assert info.value.backend == "hung" and "K" in str(info.value)


def test_waiters_share_the_deadline_and_the_one_call(hung: HungBackend) -> None:
    """Eight threads asking for the hung key all fail in time; the backend is called once."""
    manager = SecretManager(hung, read_timeout_seconds=0.3)

    def read(_: int) -> str:
        try:
            return manager.get("K")
        except ConfigurationError as exc:
            return type(exc).__name__

    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(read, range(8)))
    assert outcomes == ["BackendUnavailableError"] * 8
    assert time.monotonic() - start < 3.0
    assert hung.calls == 1  # later readers joined the hung flight, none started another


def test_a_stale_value_is_served_while_a_refresh_hangs(hung: HungBackend) -> None:
    """With TTL 0, a hung re-read serves the last good value (stale-if-error) in time."""
    clock = FakeClock()
    hung.hang = False
    manager = SecretManager(hung, ttl_seconds=0, read_timeout_seconds=0.3, clock=clock)
    assert manager.get("K") == "v"
    hung.hang = True
    clock.advance(1)
    start = time.monotonic()
    assert manager.get("K") == "v"
    assert time.monotonic() - start < 3.0


def test_the_read_after_the_backend_recovers_succeeds(hung: HungBackend) -> None:
    """Once the hung call returns, the value is cached and served."""
    manager = SecretManager(hung, read_timeout_seconds=0.2)
    with pytest.raises(BackendUnavailableError):
        manager.get("K")
    hung.hang = False
    hung.release.set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            assert manager.get("K") == "v"
            break
        except BackendUnavailableError:
            time.sleep(0.05)
    assert manager.get("K") == "v"


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, DEFAULT_READ_TIMEOUT_SECONDS), ("2.5", 2.5), ("3s", 3.0)]
)
def test_secret_read_timeout_is_read_from_the_environment(raw: str | None, expected: float) -> None:
    """SECRET_READ_TIMEOUT sets the deadline; unset means the default."""
    environ = {} if raw is None else {"SECRET_READ_TIMEOUT": raw}
    manager = SecretManager(MemoryBackend({}), environ=environ)
    assert manager.read_timeout_seconds == expected


@pytest.mark.parametrize("raw", ["0", "-1", "soon"])
def test_a_bad_secret_read_timeout_names_the_variable(raw: str) -> None:
    """A zero, negative or non-numeric SECRET_READ_TIMEOUT is a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match="SECRET_READ_TIMEOUT"):
        SecretManager(MemoryBackend({}), environ={"SECRET_READ_TIMEOUT": raw})
