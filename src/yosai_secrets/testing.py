"""Test helpers for users' own tests: an in-memory backend and a fake clock.

>>> from yosai_secrets import SecretManager
>>> from yosai_secrets.testing import FakeClock, MemoryBackend
>>> manager = SecretManager(MemoryBackend({"DB_PASSWORD": "x" * 12}), clock=FakeClock())
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from .backends.base import Fetched, Location
from .errors import BackendUnavailableError, SecretNotFoundError

__all__ = ["FakeClock", "MemoryBackend"]


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds


class MemoryBackend:
    """A backend holding its secrets in a dict, for tests.

    A key ``path#field`` reads field ``field`` of the mapping stored at ``path``. Set ``failing``
    to make every fetch raise :class:`BackendUnavailableError`, and ``delay_seconds`` to make
    each fetch slow; ``calls`` counts fetches.
    """

    def __init__(self, data: Mapping[str, Any] | None = None, *, name: str = "memory") -> None:
        self.name = name
        self.data: dict[str, Any] = dict(data or {})
        self.failing = False
        self.delay_seconds = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def locate(self, key: str) -> Location:
        """``path#field`` -> Location(path, field)."""
        path, _, field = key.partition("#")
        return Location(path, field or None)

    def fetch(self, path: str) -> Fetched:
        """Return the value stored at ``path``."""
        with self._lock:
            self.calls += 1
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if self.failing:
            raise BackendUnavailableError(
                f"memory backend is failing (reading {path!r})", backend=self.name, path=path
            )
        if path not in self.data:
            raise SecretNotFoundError(path, [f"{self.name} {path}"])
        value: Fetched = self.data[path]
        return value

    def describe(self, path: str) -> str:
        """Name the path."""
        return f"{self.name} {path}"
