"""get_many reads each path once and resolves all of its keys from that one read."""

from __future__ import annotations

from typing import Any

from yosai_secrets.backends.base import Location
from yosai_secrets.manager import SecretManager


class Rotating:
    """A store whose path P holds a new user/password pair at every read."""

    name = "rotating"

    def __init__(self) -> None:
        self.reads = 0

    def locate(self, key: str) -> Location:
        """Both keys are fields of path P."""
        return Location("P", {"DB_USER": "user", "DB_PASSWORD": "password"}[key])

    def fetch(self, path: str) -> Any:
        """A consistent pair, a new one each time."""
        self.reads += 1
        return {"user": f"role-{self.reads}", "password": f"pw-of-role-{self.reads}"}


def test_keys_of_one_path_come_from_one_read_even_with_no_cache() -> None:
    """With TTL 0 every read refetches: the user and password still come from one answer."""
    backend = Rotating()
    manager = SecretManager(backend, ttl_seconds=0)
    for _ in range(5):
        got = manager.get_many(["DB_USER", "DB_PASSWORD"])
        assert got["DB_PASSWORD"] == f"pw-of-{got['DB_USER']}"
    assert backend.reads == 5  # one read per call, not one per key


def test_keys_of_one_path_come_from_one_read_when_the_entry_expires() -> None:
    """With a cache, an expired entry refreshed mid-call never mixes two versions."""
    from yosai_secrets.testing import FakeClock

    clock = FakeClock()
    backend = Rotating()
    manager = SecretManager(backend, ttl_seconds=10, clock=clock)
    for _ in range(4):
        got = manager.get_many(["DB_USER", "DB_PASSWORD"])
        assert got["DB_PASSWORD"] == f"pw-of-{got['DB_USER']}"
        clock.advance(11)
