"""AWS Secrets Manager as a rotation store: rotated with staging labels, stamped with a tag.

The store works through the very :class:`~yosai_secrets.backends.aws.AwsBackend` that reading
uses: the same boto3 client settings and the same names (``AwsBackend.locate``), so what rotation
writes is what ``get_secret(KEY)`` reads. Most keys are one secret each (``SECRET_NAME_PREFIX`` +
key). ``DB_USER`` and ``DB_PASSWORD`` are the ``username`` and ``password`` of one JSON secret,
``DB_CREDENTIALS`` (:data:`~yosai_secrets.backends.aws_settings.JSON_SECRET_KEYS`): the keys of one
secret are written as one new version and promoted in one step, so no reader ever gets a new user
with an old password. The new version is put under ``AWSPENDING``, then promoted to
``AWSCURRENT``; the old version keeps ``AWSPREVIOUS`` until ``finish`` removes the label. Request
tokens come from the journal, so a re-run never creates a second version.

Each secret carries its rotation time in the tag ``rotated-at`` (written when it is promoted,
put back as it was by ``abort``): ``status`` reads that, never a version's creation date, which
any write would refresh.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final, NamedTuple

from ..backends.aws import AwsBackend
from ..errors import RotationError, YosaiSecretsError
from .generate import parse_fallbacks
from .policy import parse_time

__all__ = ["ROTATED_AT_TAG", "AwsStore"]

Changes = Mapping[str, str]

#: The tag that records when a secret was last rotated (UTC, ISO 8601).
ROTATED_AT_TAG: Final = "rotated-at"


class _Secret(NamedTuple):
    """One AWS secret a rotation writes.

    ``entry`` names it in the journal (the key for a one-key secret, the secret's name for a JSON
    one); ``fields`` maps each key it holds to its JSON key, or to None when the whole secret
    string is that key's value.
    """

    entry: str
    secret_id: str
    fields: dict[str, str | None]

    @property
    def plain(self) -> str | None:
        """The key whose value is the whole secret string, or None for a JSON secret."""
        if len(self.fields) == 1:
            key, json_key = next(iter(self.fields.items()))
            return key if json_key is None else None
        return None


class AwsStore:
    """AWS secrets rotated with the ``AWSPENDING``/``AWSCURRENT`` stages, one step per secret."""

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

    def _secrets(self, keys: Iterable[str]) -> list[_Secret]:
        """The secrets that hold ``keys``, as reading locates them; one per JSON secret."""
        found: dict[str, _Secret] = {}
        for key in keys:
            where = self.backend.locate(key)
            if where.field is None:
                found[key] = _Secret(key, where.path, {key: None})
            else:
                found.setdefault(where.path, _Secret(where.path, where.path, {}))
                found[where.path].fields[key] = where.field
        return list(found.values())

    def _id_of(self, entry: str, recorded: Mapping[str, Any]) -> str:
        return str(recorded.get("secret_id") or self.backend.locate(entry).path)

    # -- reading the store ----------------------------------------------------------------------

    def _describe(self, secret_id: str) -> dict[str, Any] | None:
        """``DescribeSecret``, or None when the secret does not exist."""
        try:
            return dict(self._client.describe_secret(SecretId=secret_id))
        except Exception as exc:
            if _aws_code(exc) == "ResourceNotFoundException":
                return None
            raise _aws_error("describe", secret_id, exc) from None

    def _stages(self, secret_id: str) -> dict[str, list[str]]:
        described = self._describe(secret_id) or {}
        return dict(described.get("VersionIdsToStages") or {})

    def _holder(self, secret_id: str, stage: str) -> str | None:
        for version, stages in self._stages(secret_id).items():
            if stage in stages:
                return version
        return None

    def _read(self, secret: _Secret, *, version_id: str | None = None) -> dict[str, Any]:
        """The JSON object of one version of ``secret`` (default: ``AWSCURRENT``)."""
        try:
            if version_id:
                text = self.backend.fetch_version(secret.secret_id, version_id=version_id)
            else:
                text = self.backend.fetch_version(secret.secret_id, stage="AWSCURRENT")
        except YosaiSecretsError as exc:
            # Our backend's messages name the secret and the region, never a value.
            raise RotationError(
                f"could not read aws-secrets:{secret.secret_id} ({exc}); check the AWS "
                "credentials and permissions, then run rotate again to resume"
            ) from None
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            shape = ", ".join(f'"{j}": ...' for j in secret.fields.values() if j)
            raise RotationError(
                f"aws-secrets:{secret.secret_id} is not a JSON object, but it holds "
                f"{', '.join(secret.fields)}: write it as {{{shape}}}, then run rotate again"
            )
        return document

    def _value(self, secret: _Secret, values: Changes, base: dict[str, Any] | None) -> str:
        """The secret string of a new version: the key's value, or ``base`` with the new keys."""
        plain = secret.plain
        if plain is not None:
            return values[plain]
        document = dict(base or {})
        for key, json_key in secret.fields.items():
            if key in values and json_key is not None:
                document[json_key] = values[key]
        return json.dumps(document)

    def _stamp_of(self, described: Mapping[str, Any] | None) -> str | None:
        for tag in (described or {}).get("Tags") or []:
            if tag.get("Key") == ROTATED_AT_TAG:
                return str(tag.get("Value"))
        return None

    # -- the Store protocol ---------------------------------------------------------------------

    def prepare(self, state: dict[str, Any], old: Changes) -> None:
        """Record each secret's current version, rotation stamp and the token of its new one."""
        entries = state.setdefault("entries", {})
        for secret in self._secrets(old):
            entry = entries.setdefault(secret.entry, {"token": str(uuid.uuid4())})
            entry.setdefault("secret_id", secret.secret_id)
            if entry.get("old_version"):
                continue
            described = self._describe(secret.secret_id)
            current = None
            for version, stages in ((described or {}).get("VersionIdsToStages") or {}).items():
                if "AWSCURRENT" in stages:
                    current = version
            if current is None:
                current = self._create(secret, old)
            entry["stamp_before"] = self._stamp_of(described)
            entry["old_version"] = current

    def _create(self, secret: _Secret, old: Changes) -> str:
        """Create a secret the store lacks with its old values, so that it has an old version."""
        plain = secret.plain
        if plain is not None:
            value = old[plain] or ("[]" if plain.endswith("FALLBACKS") else "-")
        else:
            value = self._value(secret, old, None)
        try:
            made = self._client.create_secret(
                Name=secret.secret_id, SecretString=value, ClientRequestToken=str(uuid.uuid4())
            )
        except Exception as exc:
            raise _aws_error("create", secret.secret_id, exc) from None
        return str(made["VersionId"])

    def stage(self, state: dict[str, Any], new: Changes) -> None:
        """``PutSecretValue`` under ``AWSPENDING`` (idempotent: the token is the journal's).

        A JSON secret's new version is its old version with the new keys, all of them at once.
        """
        for secret in self._secrets(new):
            entry = state["entries"][secret.entry]
            if entry["token"] in self._stages(secret.secret_id):
                continue  # this version exists already (a re-run)
            base = None
            if secret.plain is None:
                base = self._read(secret, version_id=entry["old_version"])
            self._put(secret, entry["token"], self._value(secret, new, base), "pending")

    def _put(self, secret: _Secret, token: str, value: str, what: str) -> None:
        try:
            self._client.put_secret_value(
                SecretId=secret.secret_id,
                ClientRequestToken=token,
                SecretString=value,
                VersionStages=["AWSPENDING"],
            )
        except Exception as exc:
            raise _aws_error(f"put the {what} version of", secret.secret_id, exc) from None

    def promote(self, state: dict[str, Any], new: Changes, rotated_at: str) -> None:
        """Move ``AWSCURRENT`` to the pending version (the old one gets ``AWSPREVIOUS``); stamp.

        The stamp follows the move: a crash between them leaves the secret looking older than it
        is, never fresher.
        """
        for secret in self._secrets(new):
            token = state["entries"][secret.entry]["token"]
            self._move(secret.secret_id, "AWSCURRENT", token)
            self._drop_label(secret.secret_id, "AWSPENDING")
            self._tag(secret.secret_id, rotated_at)

    def finish(self, state: dict[str, Any], new: Changes) -> None:
        """Put the dropped fallbacks as current, then remove every ``AWSPREVIOUS`` label."""
        entries = state.setdefault("entries", {})
        for secret in self._secrets(new):
            entry = entries.setdefault(secret.entry, {"secret_id": secret.secret_id})
            token = entry.setdefault("finish_token", str(uuid.uuid4()))
            if token not in self._stages(secret.secret_id):
                base = self._read(secret) if secret.plain is None else None
                self._put(secret, token, self._value(secret, new, base), "finished")
            # Moved explicitly: a put with VersionStages=[AWSPENDING] never moves AWSCURRENT (AWS
            # API reference, PutSecretValue); the move is the rotation's own "finishSecret" step.
            self._move(secret.secret_id, "AWSCURRENT", token)
            self._drop_label(secret.secret_id, "AWSPENDING")
        for name, entry in entries.items():
            self._drop_label(self._id_of(name, entry), "AWSPREVIOUS")

    def abort(self, state: dict[str, Any], old: Changes, new: Changes) -> None:
        """Move ``AWSCURRENT`` back to the old version, drop the pending label, restore stamps."""
        entries = state.get("entries", {})
        for secret in self._secrets(old):
            entry = entries.get(secret.entry) or {}
            if entry.get("old_version"):
                self._move(secret.secret_id, "AWSCURRENT", entry["old_version"])
            self._drop_label(secret.secret_id, "AWSPENDING")
            if "stamp_before" in entry:
                self._restore_stamp(secret.secret_id, entry["stamp_before"])

    def purge(self, state: dict[str, Any], leaked: frozenset[str]) -> list[str]:
        """Remove every label from each version (but the current one) holding a leaked value.

        AWS has no call that deletes one version: an unlabelled version is deprecated, stays
        readable by its version id, and is deleted by AWS later (see docs/incident-response.md).
        """
        lines: list[str] = []
        for name, entry in (state.get("entries") or {}).items():
            secret_id = self._id_of(name, entry)
            stripped = 0
            for version, stages in self._labelled_versions(secret_id).items():
                if "AWSCURRENT" in stages or not self._version_holds(secret_id, version, leaked):
                    continue
                for stage in stages:
                    self._remove_label(secret_id, stage, version)
                stripped += 1
            if stripped:
                lines.append(
                    f"aws-secrets:{secret_id}: {stripped} version(s) holding a leaked value lost "
                    "every label (deprecated: AWS deletes them later)"
                )
        return lines

    def _labelled_versions(self, secret_id: str) -> dict[str, list[str]]:
        """Every version of ``secret_id`` that carries a staging label, with its labels."""
        found: dict[str, list[str]] = {}
        kwargs: dict[str, Any] = {"SecretId": secret_id, "IncludeDeprecated": True}
        while True:
            try:
                page = self._client.list_secret_version_ids(**kwargs)
            except Exception as exc:
                raise _aws_error("list the versions of", secret_id, exc) from None
            for version in page.get("Versions") or []:
                if version.get("VersionStages"):
                    found[str(version["VersionId"])] = list(version["VersionStages"])
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    def _version_holds(self, secret_id: str, version: str, leaked: frozenset[str]) -> bool:
        try:
            text = self.backend.fetch_version(secret_id, version_id=version)
        except YosaiSecretsError as exc:
            raise RotationError(
                f"could not read a version of aws-secrets:{secret_id} ({exc}); check the AWS "
                "credentials and permissions, then run the incident again"
            ) from None
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        if text in leaked:
            return True
        try:
            document = json.loads(text)
        except ValueError:
            return False
        values = document.values() if isinstance(document, dict) else []
        return any(isinstance(v, str) and v in leaked for v in values) or _fallbacks_hold(
            text, leaked
        )

    def _remove_label(self, secret_id: str, stage: str, version: str) -> None:
        try:
            self._client.update_secret_version_stage(
                SecretId=secret_id, VersionStage=stage, RemoveFromVersionId=version
            )
        except Exception as exc:
            raise _aws_error(f"remove {stage} from", secret_id, exc) from None

    def rotated_at(self, key: str) -> datetime | None:
        """The ``rotated-at`` tag of the secret holding ``key``; None when it has none."""
        stamp = self._stamp_of(self._describe(self.backend.locate(key).path))
        return parse_time(stamp) if stamp else None

    # -- labels and tags ------------------------------------------------------------------------

    def _move(self, secret_id: str, stage: str, to_version: str) -> None:
        holder = self._holder(secret_id, stage)
        if holder == to_version:
            return
        kwargs: dict[str, Any] = {
            "SecretId": secret_id,
            "VersionStage": stage,
            "MoveToVersionId": to_version,
        }
        if holder is not None:
            kwargs["RemoveFromVersionId"] = holder
        try:
            self._client.update_secret_version_stage(**kwargs)
        except Exception as exc:
            raise _aws_error(f"move {stage} on", secret_id, exc) from None

    def _drop_label(self, secret_id: str, stage: str) -> None:
        holder = self._holder(secret_id, stage)
        if holder is None:
            return
        try:
            self._client.update_secret_version_stage(
                SecretId=secret_id, VersionStage=stage, RemoveFromVersionId=holder
            )
        except Exception as exc:
            raise _aws_error(f"remove {stage} from", secret_id, exc) from None

    def _tag(self, secret_id: str, rotated_at: str) -> None:
        try:
            self._client.tag_resource(
                SecretId=secret_id, Tags=[{"Key": ROTATED_AT_TAG, "Value": rotated_at}]
            )
        except Exception as exc:
            raise _aws_error("record the rotation time on", secret_id, exc) from None

    def _restore_stamp(self, secret_id: str, stamp: str | None) -> None:
        if self._stamp_of(self._describe(secret_id)) == stamp:
            return
        if stamp is not None:
            self._tag(secret_id, stamp)
            return
        try:
            self._client.untag_resource(SecretId=secret_id, TagKeys=[ROTATED_AT_TAG])
        except Exception as exc:
            raise _aws_error("remove the rotation time from", secret_id, exc) from None


def _fallbacks_hold(text: str, leaked: frozenset[str]) -> bool:
    """Whether ``text``, read as a fallbacks list, names a leaked key."""
    return any(key in leaked for key in parse_fallbacks(text))


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
