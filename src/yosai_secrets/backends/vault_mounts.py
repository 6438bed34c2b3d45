"""Which mount holds a Vault path, and its KV version: asked once per mount, then remembered.

A raw KV v2 path (``<mount>/data/<name>``) is read as written, with no question first: the answer's
shape tells KV v2 from v1. Any other path may be the logical KV v2 form (``secret/db``), so its
mount's KV version is asked once (``sys/internal/ui/mounts/<path>``) and remembered; the canonical
(raw API) path is what the cache keys on, so both spellings of one secret share one entry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Final

from ..errors import BackendAuthError, BackendUnavailableError
from .vault_http import VaultStatusError

__all__ = ["KV1", "KV2", "OTHER", "MountTable", "is_raw_kv2", "looks_kv2"]

_log = logging.getLogger("yosai_secrets.backends.vault")

#: Mount version markers: KV v1, KV v2, or not a KV engine.
KV1: Final = 1
KV2: Final = 2
OTHER: Final = 0
#: The most remembered path spellings (bounded: keys may come from anywhere).
_MAX_CANONICAL: Final = 4096


class MountTable:
    """The mounts seen so far and the canonical form of each path asked for.

    Args:
        ask: sends the mount question for a path and returns the server's JSON answer.
    """

    def __init__(self, ask: Callable[[str], dict[str, Any]]) -> None:
        self._ask = ask
        self._mounts: dict[str, int] = {}
        self._canonical: dict[str, str] = {}
        self._lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        """A new lock (the parent's may have been held at the fork); what was learnt is kept."""
        self._lock = threading.Lock()

    def mount_paths(self) -> frozenset[str]:
        """The mounts learnt so far (``secret/``, ``kv/``...)."""
        return frozenset(self._mounts)

    def version_of(self, mount: str) -> int | None:
        """The KV version of a known mount (:data:`KV1`, :data:`KV2`, :data:`OTHER`)."""
        return self._mounts.get(mount)

    def canonical_path(self, path: str) -> str:
        """The raw API path for ``path`` (``secret/db`` -> ``secret/data/db`` on KV v2)."""
        found = self._canonical.get(path)
        if found is not None:
            return found
        mount = self.known_mount(path)
        if mount is None:
            if is_raw_kv2(path):
                return path  # read as written: the answer's shape tells the KV version
            mount = self.look_up(path)
        canonical = path
        if mount is not None and self._mounts.get(mount) == KV2:
            rest = path[len(mount) :]
            if not rest.startswith(("data/", "metadata/")):
                canonical = f"{mount}data/{rest}"
        if mount is not None:
            if len(self._canonical) > _MAX_CANONICAL:
                self._canonical.clear()
            self._canonical[path] = canonical
        return canonical

    def known_mount(self, path: str) -> str | None:
        """The longest known mount ``path`` lies under, if any."""
        probe = path + "/"
        best = None
        for mount in self._mounts:  # replaced, never mutated: safe to walk without the lock
            if probe.startswith(mount) and (best is None or len(mount) > len(best)):
                best = mount
        return best

    def look_up(self, path: str) -> str | None:
        """Ask the server which mount holds ``path`` and its KV version; remember it.

        Returns None (and remembers nothing) when the server cannot say now; the path is then
        read as given, and the answer's shape tells KV v2 from v1.
        """
        with self._lock:
            known = self.known_mount(path)
            if known is not None:
                return known
            try:
                body = self._ask(path)
            except VaultStatusError:
                # 403: this token may not see the mount table for the path; read the path as
                # given (and do not ask again for it): the read will tell.
                self._canonical[path] = path
                return None
            except (BackendUnavailableError, BackendAuthError):
                return None
            return self._learn(path, body.get("data") or {})

    def _learn(self, path: str, data: dict[str, Any]) -> str | None:
        mount = str(data.get("path") or path.split("/", 1)[0] + "/")
        if not (path + "/").startswith(mount):
            # Defence in depth: an answer about another path is never taken for this one.
            _log.debug("vault answered the mount look-up of %s with %s; ignored", path, mount)
            return None
        kind = data.get("type")
        options = data.get("options") or {}
        version = OTHER
        if kind in ("kv", "generic"):
            version = KV2 if str(options.get("version", "1")) == "2" else KV1
        self._mounts = {**self._mounts, mount: version}
        _log.debug("vault mount %s is %s", mount, {1: "KV v1", 2: "KV v2"}.get(version, kind))
        return mount

    def kv_version(self, path: str) -> int | None:
        """The KV version ``path`` is read with, when its mount is known (None: not known)."""
        mount = self.known_mount(path)
        if mount is None:
            return None
        version = self._mounts[mount]
        if version == KV2 and not path[len(mount) :].startswith("data/"):
            return OTHER
        return version if version != OTHER else None


def is_raw_kv2(path: str) -> bool:
    """``<mount>/data/<name>`` (or ``metadata/``): a KV v2 API path, right as written."""
    parts = path.split("/", 2)
    return len(parts) == 3 and parts[1] in ("data", "metadata") and bool(parts[2])


def looks_kv2(data: Any) -> bool:
    """Whether a read's ``data`` has KV v2's shape (``data`` beside ``metadata.version``)."""
    return (
        isinstance(data, dict)
        and set(data) == {"data", "metadata"}
        and isinstance(data["metadata"], dict)
        and "version" in data["metadata"]
    )
