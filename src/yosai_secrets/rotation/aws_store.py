"""AWS Secrets Manager as a rotation store: one secret per key, rotated with staging labels.

The store works through the very :class:`~yosai_secrets.backends.aws.AwsBackend` that reading
uses: the same boto3 client settings and the same names (``SECRET_NAME_PREFIX`` + key, the prefix
never added twice), so what rotation writes is what ``get_secret("DB_PASSWORD")`` reads. The new
value is put under ``AWSPENDING``, then promoted to ``AWSCURRENT``; the old version keeps
``AWSPREVIOUS`` until ``finish`` removes the label. Request tokens come from the journal, so a
re-run never creates a second version.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..backends.aws import AwsBackend
from ..errors import RotationError

__all__ = ["AwsStore"]

Changes = Mapping[str, str]


class AwsStore:
    """One AWS secret per key, rotated with the ``AWSPENDING``/``AWSCURRENT`` stages."""

    name = "aws"

    def __init__(self, backend: AwsBackend) -> None:
        self.backend = backend

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AwsStore:
        """Build from boto3's configuration and ``SECRET_NAME_PREFIX``, exactly as reading does."""
        return cls(AwsBackend.from_environ(environ))

    @property
    def _client(self) -> Any:
        return self.backend.client

    def _id(self, key: str) -> str:
        # The name reading uses for the key: SECRET_NAME_PREFIX + key ("prod/DB_PASSWORD").
        return self.backend.locate(key).path

    def _stages(self, name: str) -> dict[str, list[str]]:
        try:
            described = self._client.describe_secret(SecretId=self._id(name))
        except Exception as exc:
            if _aws_code(exc) == "ResourceNotFoundException":
                return {}
            raise _aws_error("describe", self._id(name), exc) from None
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
                        Name=self._id(name),
                        SecretString=value or ("[]" if name.endswith("FALLBACKS") else "-"),
                        ClientRequestToken=str(uuid.uuid4()),
                    )
                except Exception as exc:
                    raise _aws_error("create", self._id(name), exc) from None
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
                    SecretId=self._id(name),
                    ClientRequestToken=entry["token"],
                    SecretString=value,
                    VersionStages=["AWSPENDING"],
                )
            except Exception as exc:
                raise _aws_error("put the pending version of", self._id(name), exc) from None

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
                        SecretId=self._id(name),
                        ClientRequestToken=token,
                        SecretString=value,
                        VersionStages=["AWSPENDING"],
                    )
                except Exception as exc:
                    raise _aws_error("put the finished value of", self._id(name), exc) from None
            # Moved explicitly: a put with VersionStages=[AWSPENDING] never moves AWSCURRENT (AWS
            # API reference, PutSecretValue); the move is the rotation's own "finishSecret" step.
            self._move(name, "AWSCURRENT", token)
            self._drop_label(name, "AWSPENDING")
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
            listed = self._client.list_secret_version_ids(SecretId=self._id(key))
        except Exception as exc:
            if _aws_code(exc) == "ResourceNotFoundException":
                return None
            raise _aws_error("list the versions of", self._id(key), exc) from None
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
            "SecretId": self._id(name),
            "VersionStage": stage,
            "MoveToVersionId": to_version,
        }
        if holder is not None:
            kwargs["RemoveFromVersionId"] = holder
        try:
            self._client.update_secret_version_stage(**kwargs)
        except Exception as exc:
            raise _aws_error(f"move {stage} on", self._id(name), exc) from None

    def _drop_label(self, name: str, stage: str) -> None:
        holder = self._holder(name, stage)
        if holder is None:
            return
        try:
            self._client.update_secret_version_stage(
                SecretId=self._id(name), VersionStage=stage, RemoveFromVersionId=holder
            )
        except Exception as exc:
            raise _aws_error(f"remove {stage} from", self._id(name), exc) from None


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
