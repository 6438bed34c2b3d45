"""Vault / OpenBao KV v2 as a rotation store: one path, one field per key, a version per change.

The store writes through the very :class:`~yosai_secrets.backends.vault.VaultBackend` that reading
uses (the same ``VAULT_*`` settings: every address of ``VAULT_ADDR``, TLS, token, AppRole or
Kubernetes auth), at the path bare names are read from (``VAULT_SECRETS_PATH``, default
``secret/data/yosai``): what rotation writes is what ``get_secret("DB_PASSWORD")`` reads. The new
values are a new version of that path; the old version remains readable until ``finish`` destroys
it. Each key's rotation time is recorded in the path's custom metadata (``rotated_at_<KEY>``), and
only there: the path is shared by every key, so the creation time of its current version says
nothing about any one key (a key never stamped is "unknown" to ``status``). ``abort`` puts the
stamps back as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..backends.vault import VaultBackend
from ..backends.vault_http import VaultStatusError
from ..errors import BackendError, ConfigurationError, RotationError
from .generate import FALLBACKS_KEY, parse_fallbacks
from .policy import parse_time

__all__ = ["VaultStore"]

Changes = Mapping[str, str]


def _split_kv2(path: str) -> tuple[str, str]:
    """``secret/data/yosai`` -> (``secret``, ``yosai``); ``secret/yosai`` likewise."""
    path = path.strip("/")
    if "/data/" in path:
        mount, _, rest = path.partition("/data/")
        return mount, rest
    mount, _, rest = path.partition("/")
    if not rest:
        raise ConfigurationError(f"VAULT_SECRETS_PATH={path!r} names no secret under a mount")
    return mount, rest


def _stamp_key(key: str) -> str:
    """The custom metadata entry that records when ``key`` was last rotated."""
    return f"rotated_at_{key}"


def _holds(fields: Mapping[str, Any], leaked: frozenset[str]) -> bool:
    """Whether a version's fields hold a leaked value (a fallbacks list: any of its keys)."""
    for key, value in fields.items():
        if not isinstance(value, str):
            continue
        candidates = parse_fallbacks(value) if key == FALLBACKS_KEY else [value]
        if any(c in leaked for c in candidates):
            return True
    return False


class VaultStore:
    """The KV v2 path whose fields are the keys (``VAULT_SECRETS_PATH``), through ``backend``."""

    name = "vault"

    def __init__(self, backend: VaultBackend) -> None:
        self.backend = backend
        self.raw_path = backend.settings.secrets_path
        self.mount, self.path = _split_kv2(self.raw_path)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> VaultStore:
        """Build from the ``VAULT_*`` variables, exactly as reading does."""
        return cls(VaultBackend.from_environ(environ))

    # -- KV v2 API ------------------------------------------------------------------------------

    def _api(
        self,
        action: str,
        method: str,
        kind: str,
        body: dict[str, Any] | None = None,
        query: str = "",
    ) -> Any:
        """One request to ``<mount>/<kind>/<path><query>``; None when it answers 404."""
        try:
            return self.backend.request(method, f"{self.mount}/{kind}/{self.path}{query}", body)
        except VaultStatusError as exc:
            if exc.status == 404:
                return None
            raise self._error(action, exc) from None
        except BackendError as exc:
            raise self._error(action, exc) from None

    def _read(self) -> tuple[int, dict[str, Any], dict[str, Any]]:
        """(current version, its fields, its metadata); (0, {}, {}) when the path is empty."""
        answer = self._api("read the metadata of", "GET", "metadata")
        meta = dict((answer or {}).get("data") or {})
        current = int(meta.get("current_version") or 0)
        version_meta = (meta.get("versions") or {}).get(str(current)) or {}
        if current == 0 or version_meta.get("destroyed") or version_meta.get("deletion_time"):
            return current, {}, meta
        return current, self._version_fields(current), meta

    def _version_fields(self, version: int) -> dict[str, Any]:
        if version <= 0:
            return {}
        answer = self._api("read a version of", "GET", "data", query=f"?version={version}")
        data = ((answer or {}).get("data") or {}).get("data")
        return dict(data) if isinstance(data, dict) else {}

    def _write(self, fields: Mapping[str, Any], cas: int) -> int:
        body = {"options": {"cas": cas}, "data": dict(fields)}
        answer = self._api("write a new version of", "POST", "data", body)
        return int(((answer or {}).get("data") or {}).get("version") or 0)

    def _merge_write(self, values: Changes) -> int:
        current, fields, _ = self._read()
        if all(fields.get(k) == v for k, v in values.items()):
            return current  # already written (a re-run after a crash)
        return self._write({**fields, **values}, cas=current)

    def _destroy(self, action: str, versions: list[int]) -> None:
        self._api(action, "POST", "destroy", {"versions": versions})

    # -- the Store protocol ---------------------------------------------------------------------

    def prepare(self, state: dict[str, Any], old: Changes) -> None:
        """Record the version the rotation starts from, and each key's rotation stamp."""
        if "old_version" not in state:
            current, _, meta = self._read()
            custom = meta.get("custom_metadata") or {}
            state["stamps_before"] = {k: custom.get(_stamp_key(k)) for k in old}
            state["old_version"] = current

    def stage(self, state: dict[str, Any], new: Changes) -> None:
        """KV v2 has no pending stage: the journal holds the new values until promotion."""

    def promote(self, state: dict[str, Any], new: Changes, rotated_at: str) -> None:
        """Write the new values as a new version; record each key's rotation time."""
        state["new_version"] = self._merge_write(new)
        self._stamp(list(new), rotated_at)

    def finish(self, state: dict[str, Any], new: Changes) -> None:
        """Write the dropped fallbacks, then destroy the versions that held old values."""
        current = self._merge_write(new) if new else self._read()[0]
        doomed = [
            v for v in (state.get("old_version"), state.get("new_version")) if v and v != current
        ]
        if doomed:
            self._destroy("destroy old versions of", doomed)
        state["destroyed"] = doomed

    def abort(self, state: dict[str, Any], old: Changes, new: Changes) -> None:
        """Write the old values back as the newest version and destroy the rotated one."""
        current, fields, _ = self._read()
        rotated = [k for k in new if k in fields and fields[k] == new[k]]
        if rotated:
            # The store's own old version is the truth for its values; the manifest's otherwise.
            before = self._version_fields(state.get("old_version") or 0)
            current = self._merge_write({k: before.get(k, old.get(k, "")) for k in rotated})
        promoted = state.get("new_version")
        if promoted and promoted not in (current, state.get("old_version")):
            self._destroy("destroy the rotated version of", [promoted])
        if "stamps_before" in state:
            self._restore_stamps(state["stamps_before"])

    def purge(self, state: dict[str, Any], leaked: frozenset[str]) -> list[str]:
        """Destroy every version but the current one that holds a leaked value.

        A soft-deleted version cannot be read to check, and can be undeleted: it is destroyed
        too. The current version (the new values) is never touched.
        """
        current, _, meta = self._read()
        doomed: list[int] = []
        for number, info in sorted((meta.get("versions") or {}).items(), key=lambda i: int(i[0])):
            version = int(number)
            if version == current or (info or {}).get("destroyed"):
                continue
            if (info or {}).get("deletion_time") or _holds(self._version_fields(version), leaked):
                doomed.append(version)
        if not doomed:
            return []
        self._destroy("destroy the versions holding leaked values of", doomed)
        state["purged"] = doomed
        listed = ", ".join(str(v) for v in doomed)
        return [f"vault:{self.raw_path}: version(s) {listed} destroyed"]

    def rotated_at(self, key: str) -> datetime | None:
        """The key's recorded rotation time (custom metadata); None when it was never stamped.

        Only metadata is read: no value leaves the store to answer this.
        """
        answer = self._api("read the metadata of", "GET", "metadata")
        custom = ((answer or {}).get("data") or {}).get("custom_metadata") or {}
        stamp = custom.get(_stamp_key(key))
        return parse_time(stamp) if isinstance(stamp, str) and stamp else None

    def _stamp(self, keys: list[str], rotated_at: str) -> None:
        self._write_stamps({_stamp_key(k): rotated_at for k in keys})

    def _restore_stamps(self, before: Mapping[str, str | None]) -> None:
        self._write_stamps({_stamp_key(k): v for k, v in before.items()})

    def _write_stamps(self, stamps: Mapping[str, str | None]) -> None:
        """Set (or, for None, remove) custom metadata entries, keeping the others."""
        _, _, meta = self._read()
        was = dict(meta.get("custom_metadata") or {})
        custom = {k: v for k, v in was.items() if stamps.get(k, v) is not None}
        custom.update({k: v for k, v in stamps.items() if v is not None})
        if custom == was:
            return
        body = {
            "custom_metadata": custom,
            "delete_version_after": meta.get("delete_version_after") or "0s",
        }
        self._api("record the rotation time on", "POST", "metadata", body)

    def _error(self, action: str, exc: BackendError) -> RotationError:
        # Our backend's messages name the address and path, never a token or a value.
        return RotationError(
            f"could not {action} vault:{self.raw_path} ({exc}); check VAULT_ADDR, the token "
            "and its policy, then run rotate again to resume"
        )
