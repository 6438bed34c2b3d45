"""The contract every secret source satisfies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol, TypeAlias, runtime_checkable

__all__ = ["Backend", "BatchBackend", "Describable", "Fetched", "Location"]

#: What one read of one path returns: a plain value, bytes, or a mapping of fields.
Fetched: TypeAlias = str | bytes | Mapping[str, Any]


class Location(NamedTuple):
    """Where a requested key lives in a backend: the path to read and the field to pick, if any.

    ``path`` is the unit of reading and caching: several fields of one path cost one read. (A
    named tuple rather than a frozen dataclass: one is made per lookup, and it is cheaper.)
    """

    path: str
    field: str | None = None


@runtime_checkable
class Backend(Protocol):
    """A secret source: it maps a key to a path, and reads one path.

    Field selection, caching, decryption and the translation of "not found" into
    :class:`~yosai_secrets.errors.SecretNotFoundError` are shared by the manager, not re-done by
    each backend. ``fetch`` raises ``SecretNotFoundError`` when the path does not exist and a
    :class:`~yosai_secrets.errors.BackendError` subclass for every other failure.
    """

    name: str

    def locate(self, key: str) -> Location:
        """Map a requested key (``DB_PASSWORD``, ``secret/data/db#password``) to a location."""
        ...

    def fetch(self, path: str) -> Fetched:
        """Read one path and return its value or its fields."""
        ...


@runtime_checkable
class BatchBackend(Backend, Protocol):
    """A backend that can read several paths in fewer calls than one each (AWS's batch API)."""

    def fetch_many(self, paths: list[str]) -> dict[str, Fetched | Exception]:
        """Read every path; each result is its value, or the error that path met."""
        ...


@runtime_checkable
class Describable(Protocol):
    """A backend that can say where a path's value comes from (a variable, a file, an address)."""

    def describe(self, path: str) -> str:
        """Describe the source of ``path`` without reading or revealing its value."""
        ...
