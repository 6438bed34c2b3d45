"""The secret stores a rotation writes to: Vault/OpenBao KV v2 and AWS Secrets Manager.

Each store keeps the old value readable until the rotation is finished:

* Vault KV v2: the new values are a new version of the path (``VAULT_SECRETS_PATH``, default
  ``secret/data/yosai``, one field per key); the old version remains until ``finish`` destroys it.
  Each key's rotation time is its own custom metadata entry (``rotated_at_<KEY>``).
* AWS: each key in the secret reading reads it from (``AwsBackend.locate``): most keys one secret
  each (``SECRET_NAME_PREFIX`` + the key), ``DB_USER`` and ``DB_PASSWORD`` the ``username`` and
  ``password`` of the JSON secret ``DB_CREDENTIALS``, written and promoted together. The new
  version is put under ``AWSPENDING``, then promoted to ``AWSCURRENT``; the old version keeps
  ``AWSPREVIOUS`` until ``finish`` removes it. Each secret's rotation time is its ``rotated-at``
  tag.

The shipped ``config/production.yaml`` reads these very places (``secret:NAME`` references, the
default backend's ``NAME``); ``tests/test_shipped_config.py`` logs in to PostgreSQL with what it
resolves after each kind of rotation.

In an incident (no grace), ``purge`` then removes what the stores still keep of the leaked values:
Vault destroys every version holding one; AWS removes every label from such a version (AWS itself
keeps an unlabelled version, deprecated, until it deletes it: see ``docs/incident-response.md``).

Every step is idempotent: it looks at the store before acting, so a re-run after a crash does the
right thing. A store's state (versions, request tokens) lives in the journal's ``store`` dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from ..backends import Backend, create_backend
from ..errors import ConfigurationError

__all__ = ["NullStore", "Store", "open_store"]

Changes = Mapping[str, str]


class Store(Protocol):
    """Where the service reads its secrets from, as a rotation sees it."""

    name: str

    def prepare(self, state: dict[str, Any], old: Changes) -> None:
        """Record the current versions (creating missing entries with their ``old`` values)."""
        ...

    def stage(self, state: dict[str, Any], new: Changes) -> None:
        """Make the new values durable without making them current (where the store can)."""
        ...

    def promote(self, state: dict[str, Any], new: Changes, rotated_at: str) -> None:
        """Make the new values current; the old ones stay readable."""
        ...

    def finish(self, state: dict[str, Any], new: Changes) -> None:
        """Write ``new`` (the dropped fallbacks) and remove the old versions."""
        ...

    def abort(self, state: dict[str, Any], old: Changes, new: Changes) -> None:
        """Make the old values current again and drop the new ones."""
        ...

    def purge(self, state: dict[str, Any], leaked: frozenset[str]) -> list[str]:
        """An incident: make every non-current version holding a ``leaked`` value unreadable.

        Returns one line per place changed (names and version numbers, never a value).
        """
        ...

    def rotated_at(self, key: str) -> datetime | None:
        """When ``key`` was last rotated, from its own stamp; None when it has none."""
        ...


class NullStore:
    """``SECRET_BACKEND=env``: the manifest is the only store; nothing to do here."""

    name = "env"

    def prepare(self, state: dict[str, Any], old: Changes) -> None:
        """Nothing to record."""

    def stage(self, state: dict[str, Any], new: Changes) -> None:
        """Nothing to stage."""

    def promote(self, state: dict[str, Any], new: Changes, rotated_at: str) -> None:
        """Nothing to promote."""

    def finish(self, state: dict[str, Any], new: Changes) -> None:
        """Nothing to remove."""

    def abort(self, state: dict[str, Any], old: Changes, new: Changes) -> None:
        """Nothing to roll back."""

    def purge(self, state: dict[str, Any], leaked: frozenset[str]) -> list[str]:
        """The manifest keeps no old versions."""
        return []

    def rotated_at(self, key: str) -> datetime | None:
        """The environment keeps no dates."""
        return None


def open_store(environ: Mapping[str, str], backend: Backend | None = None) -> Store:
    """The store ``SECRET_BACKEND`` names (``env``, ``vault`` or ``aws``).

    Args:
        environ: the environment (``SECRET_BACKEND`` and the backend's own variables).
        backend: the backend to write through (a reading manager's, to share its client); by
            default one is built from ``environ`` by the factory reading uses.

    Raises:
        ConfigurationError: an unknown backend name, or the backend's settings are wrong.
    """
    name = backend.name if backend is not None else environ.get("SECRET_BACKEND", "").strip()
    name = name.lower() or "env"
    if name == "env":
        return NullStore()
    if name not in ("vault", "aws"):
        raise ConfigurationError(
            f"SECRET_BACKEND={name!r} cannot be rotated; use env, vault or aws"
        )
    if backend is None:
        backend = create_backend(name, environ)
    if name == "vault":
        from ..backends.vault import VaultBackend
        from .vault_store import VaultStore

        if isinstance(backend, VaultBackend):
            return VaultStore(backend)
    from ..backends.aws import AwsBackend
    from .aws_store import AwsStore

    if isinstance(backend, AwsBackend):
        return AwsStore(backend)
    raise ConfigurationError(
        f"a {type(backend).__name__} cannot be rotated as SECRET_BACKEND={name}; "
        "pass a VaultBackend or an AwsBackend"
    )
