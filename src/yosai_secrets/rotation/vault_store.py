"""Vault / OpenBao KV v2 as a rotation store: one path, one field per key, a version per change.

The new values are a new version of ``VAULT_SECRETS_PATH`` (default ``secret/data/yosai``); the old
version remains readable until ``finish`` destroys it. Each key's rotation time is recorded in the
path's custom metadata (``rotated_at_<KEY>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import ConfigurationError, MissingDependencyError, RotationError
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


class VaultStore:
    """A KV v2 path whose fields are the keys (``VAULT_SECRETS_PATH``)."""

    name = "vault"

    def __init__(self, client: Any, path: str = "secret/data/yosai") -> None:
        self._client = client
        self.raw_path = path
        self.mount, self.path = _split_kv2(path)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], client: Any = None) -> VaultStore:
        """Build from ``VAULT_ADDR``/``VAULT_TOKEN``/``VAULT_SECRETS_PATH`` (or a ready client)."""
        path = environ.get("VAULT_SECRETS_PATH", "").strip() or "secret/data/yosai"
        if client is None:
            try:
                import hvac
            except ImportError:
                raise MissingDependencyError("hvac", "vault", "rotating secrets in Vault") from None
            addr = environ.get("VAULT_ADDR", "").strip()
            if not addr:
                raise ConfigurationError("SECRET_BACKEND=vault but VAULT_ADDR is not set")
            skip = environ.get("VAULT_SKIP_VERIFY", "").strip().lower() in ("1", "true", "yes")
            verify: bool | str = environ.get("VAULT_CACERT", "").strip() or not skip
            client = hvac.Client(
                url=addr,
                token=environ.get("VAULT_TOKEN") or None,
                namespace=environ.get("VAULT_NAMESPACE") or None,
                verify=verify,
                timeout=10,
            )
        return cls(client, path)

    def _read(self) -> tuple[int, dict[str, Any], dict[str, Any]]:
        """(current version, its fields, its metadata); (0, {}, {}) when the path is empty."""
        try:
            meta = self._kv().read_secret_metadata(self.path, mount_point=self.mount)["data"]
        except Exception as exc:
            if _is_not_found(exc):
                return 0, {}, {}
            raise self._error("read the metadata of", exc) from None
        current = int(meta.get("current_version") or 0)
        version_meta = (meta.get("versions") or {}).get(str(current)) or {}
        if current == 0 or version_meta.get("destroyed") or version_meta.get("deletion_time"):
            return current, {}, meta
        try:
            read = self._kv().read_secret_version(
                self.path, mount_point=self.mount, raise_on_deleted_version=True
            )
        except Exception as exc:
            if _is_not_found(exc):
                return current, {}, meta
            raise self._error("read", exc) from None
        return current, dict(read["data"]["data"] or {}), meta

    def _write(self, fields: Mapping[str, Any], cas: int) -> int:
        try:
            out = self._kv().create_or_update_secret(
                self.path, secret=dict(fields), cas=cas, mount_point=self.mount
            )
        except Exception as exc:
            raise self._error("write a new version of", exc) from None
        return int(out["data"]["version"])

    def _merge_write(self, values: Changes) -> int:
        current, fields, _ = self._read()
        if all(fields.get(k) == v for k, v in values.items()):
            return current  # already written (a re-run after a crash)
        return self._write({**fields, **values}, cas=current)

    def prepare(self, state: dict[str, Any], old: Changes) -> None:
        """Record the version the rotation starts from."""
        if "old_version" not in state:
            state["old_version"] = self._read()[0]

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
            try:
                self._kv().destroy_secret_versions(self.path, doomed, mount_point=self.mount)
            except Exception as exc:
                raise self._error("destroy old versions of", exc) from None
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
            try:
                self._kv().destroy_secret_versions(self.path, [promoted], mount_point=self.mount)
            except Exception as exc:
                raise self._error("destroy the rotated version of", exc) from None

    def _version_fields(self, version: int) -> dict[str, Any]:
        if version <= 0:
            return {}
        try:
            read = self._kv().read_secret_version(
                self.path, version=version, mount_point=self.mount, raise_on_deleted_version=True
            )
        except Exception as exc:
            if _is_not_found(exc):
                return {}
            raise self._error("read the old version of", exc) from None
        return dict(read["data"]["data"] or {})

    def rotated_at(self, key: str) -> datetime | None:
        """The key's recorded rotation time, else the creation time of the current version."""
        current, fields, meta = self._read()
        if not meta or key not in fields:
            return None
        custom = meta.get("custom_metadata") or {}
        stamp = custom.get(f"rotated_at_{key}")
        if not stamp:
            stamp = ((meta.get("versions") or {}).get(str(current)) or {}).get("created_time")
        return parse_time(stamp) if stamp else None

    def _stamp(self, keys: list[str], rotated_at: str) -> None:
        _, _, meta = self._read()
        custom = dict(meta.get("custom_metadata") or {})
        custom.update({f"rotated_at_{k}": rotated_at for k in keys})
        try:
            self._kv().update_metadata(
                self.path,
                mount_point=self.mount,
                custom_metadata=custom,
                delete_version_after=meta.get("delete_version_after") or "0s",
            )
        except Exception as exc:
            raise self._error("record the rotation time on", exc) from None

    def _kv(self) -> Any:
        return self._client.secrets.kv.v2

    def _error(self, action: str, exc: Exception) -> RotationError:
        # hvac's messages carry the server's errors list, never our values; keep the type only.
        return RotationError(
            f"could not {action} vault:{self.raw_path} ({type(exc).__name__}); "
            "check VAULT_ADDR, VAULT_TOKEN and the policy, then run rotate again to resume"
        )


def _is_not_found(exc: Exception) -> bool:
    return type(exc).__name__ == "InvalidPath"
