"""The secret stores a rotation writes to: Vault/OpenBao KV v2 and AWS Secrets Manager.

Each store keeps the old value readable until the rotation is finished:

* Vault KV v2: the new values are a new version of the path (``VAULT_SECRETS_PATH``, default
  ``secret/data/yosai``, one field per key); the old version remains until ``finish`` destroys it.
* AWS: one secret per key (named like the key). The new value is put under ``AWSPENDING``, then
  promoted to ``AWSCURRENT``; the old version keeps ``AWSPREVIOUS`` until ``finish`` removes it.

Every step is idempotent: it looks at the store before acting, so a re-run after a crash does the
right thing. A store's state (versions, request tokens) lives in the journal's ``store`` dict.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from ..errors import ConfigurationError, MissingDependencyError, RotationError

__all__ = ["AwsStore", "NullStore", "Store", "VaultStore", "open_store"]

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

    def rotated_at(self, key: str) -> datetime | None:
        """When ``key``'s current value was written, if the store knows."""
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

    def rotated_at(self, key: str) -> datetime | None:
        """The environment keeps no dates."""
        return None


def open_store(environ: Mapping[str, str], client: Any = None) -> Store:
    """The store ``SECRET_BACKEND`` names (``env``, ``vault`` or ``aws``), with an optional client.

    Raises:
        ConfigurationError: an unknown backend name.
    """
    name = environ.get("SECRET_BACKEND", "").strip().lower() or "env"
    if name == "env":
        return NullStore()
    if name == "vault":
        return VaultStore.from_environ(environ, client=client)
    if name == "aws":
        return AwsStore(client if client is not None else _aws_client())
    raise ConfigurationError(f"SECRET_BACKEND={name!r} cannot be rotated; use env, vault or aws")


# -- Vault / OpenBao KV v2 -------------------------------------------------------------------------


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
        return _parse_time(stamp) if stamp else None

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


def _parse_time(stamp: str) -> datetime | None:
    text = stamp.strip().replace("Z", "+00:00")
    # Vault gives nanoseconds; datetime takes microseconds.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- AWS Secrets Manager ---------------------------------------------------------------------------


def _aws_client() -> Any:
    try:
        import boto3
    except ImportError:
        raise MissingDependencyError("boto3", "aws", "rotating secrets in AWS") from None
    return boto3.client("secretsmanager")


class AwsStore:
    """One AWS secret per key, rotated with the ``AWSPENDING``/``AWSCURRENT`` stages."""

    name = "aws"

    def __init__(self, client: Any) -> None:
        self._client = client

    def _stages(self, name: str) -> dict[str, list[str]]:
        try:
            described = self._client.describe_secret(SecretId=name)
        except Exception as exc:
            if _aws_code(exc) == "ResourceNotFoundException":
                return {}
            raise _aws_error("describe", name, exc) from None
        return dict(described.get("VersionIdsToStages") or {})

    def _holder(self, name: str, stage: str) -> str | None:
        for version, stages in self._stages(name).items():
            if stage in stages:
                return version
        return None

    def prepare(self, state: dict[str, Any], old: Changes) -> None:
        """Record each secret's current version and the request token of its new one."""
        entries = state.setdefault("entries", {})
        for name, value in old.items():
            entry = entries.setdefault(name, {"token": str(uuid.uuid4())})
            if entry.get("old_version"):
                continue
            current = self._holder(name, "AWSCURRENT")
            if current is None:
                # A key the store lacks gets its old value first, so that it has an old version.
                try:
                    made = self._client.create_secret(
                        Name=name,
                        SecretString=value or ("[]" if name.endswith("FALLBACKS") else "-"),
                        ClientRequestToken=str(uuid.uuid4()),
                    )
                except Exception as exc:
                    raise _aws_error("create", name, exc) from None
                current = str(made["VersionId"])
            entry["old_version"] = current

    def stage(self, state: dict[str, Any], new: Changes) -> None:
        """``PutSecretValue`` under ``AWSPENDING`` (idempotent: the token is the journal's)."""
        for name, value in new.items():
            entry = state["entries"][name]
            stages = self._stages(name).get(entry["token"])
            if stages is not None:
                continue  # this version exists already (a re-run)
            try:
                self._client.put_secret_value(
                    SecretId=name,
                    ClientRequestToken=entry["token"],
                    SecretString=value,
                    VersionStages=["AWSPENDING"],
                )
            except Exception as exc:
                raise _aws_error("put the pending version of", name, exc) from None

    def promote(self, state: dict[str, Any], new: Changes, rotated_at: str) -> None:
        """Move ``AWSCURRENT`` to the pending version; the old one gets ``AWSPREVIOUS``."""
        for name in new:
            token = state["entries"][name]["token"]
            self._move(name, "AWSCURRENT", token)
            self._drop_label(name, "AWSPENDING")

    def finish(self, state: dict[str, Any], new: Changes) -> None:
        """Put the dropped fallbacks as current, then remove every ``AWSPREVIOUS`` label."""
        for name, value in new.items():
            entry = state["entries"].setdefault(name, {})
            token = entry.setdefault("finish_token", str(uuid.uuid4()))
            if token not in self._stages(name):
                try:
                    self._client.put_secret_value(
                        SecretId=name, ClientRequestToken=token, SecretString=value
                    )
                except Exception as exc:
                    raise _aws_error("put the finished value of", name, exc) from None
        for name in state.get("entries", {}):
            self._drop_label(name, "AWSPREVIOUS")

    def abort(self, state: dict[str, Any], old: Changes, new: Changes) -> None:
        """Move ``AWSCURRENT`` back to the old version and drop the pending label."""
        for name in old:
            entry = state.get("entries", {}).get(name) or {}
            if entry.get("old_version"):
                self._move(name, "AWSCURRENT", entry["old_version"])
            self._drop_label(name, "AWSPENDING")

    def rotated_at(self, key: str) -> datetime | None:
        """The creation date of the version labelled ``AWSCURRENT``."""
        try:
            listed = self._client.list_secret_version_ids(SecretId=key)
        except Exception as exc:
            if _aws_code(exc) == "ResourceNotFoundException":
                return None
            raise _aws_error("list the versions of", key, exc) from None
        for version in listed.get("Versions", []):
            if "AWSCURRENT" in (version.get("VersionStages") or []):
                created = version.get("CreatedDate")
                if isinstance(created, datetime):
                    return created if created.tzinfo else created.replace(tzinfo=UTC)
        return None

    def _move(self, name: str, stage: str, to_version: str) -> None:
        holder = self._holder(name, stage)
        if holder == to_version:
            return
        kwargs: dict[str, Any] = {
            "SecretId": name,
            "VersionStage": stage,
            "MoveToVersionId": to_version,
        }
        if holder is not None:
            kwargs["RemoveFromVersionId"] = holder
        try:
            self._client.update_secret_version_stage(**kwargs)
        except Exception as exc:
            raise _aws_error(f"move {stage} on", name, exc) from None

    def _drop_label(self, name: str, stage: str) -> None:
        holder = self._holder(name, stage)
        if holder is None:
            return
        try:
            self._client.update_secret_version_stage(
                SecretId=name, VersionStage=stage, RemoveFromVersionId=holder
            )
        except Exception as exc:
            raise _aws_error(f"remove {stage} from", name, exc) from None


def _aws_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str((response.get("Error") or {}).get("Code", ""))
    return ""


def _aws_error(action: str, name: str, exc: Exception) -> RotationError:
    code = _aws_code(exc) or type(exc).__name__
    return RotationError(
        f"could not {action} aws-secrets:{name} ({code}); check the AWS credentials and "
        "permissions, then run rotate again to resume"
    )


def utc_now_text(now: datetime | None = None) -> str:
    """An ISO 8601 UTC time with seconds, ``Z``-suffixed (the annotation format)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")
