"""AWS Secrets Manager: one secret per key, JSON keys as fields, batched reads.

Names, as the operator guide writes them::

    SECRET_KEY           the secret named SECRET_NAME_PREFIX + "SECRET_KEY" (prefix e.g. "prod/")
    DB_PASSWORD          the key "password" of the JSON secret SECRET_NAME_PREFIX + "DB_CREDENTIALS"
                         (DB_USER: its "username"; one secret, so the pair changes in one step)
    prod/db#password     the key "password" of the JSON SecretString of the secret "prod/db"
    arn:aws:...:secret:x a secret by ARN (never prefixed)

The prefix is not added twice: a name that already starts with it is used as it is, so
``aws-secrets:prod/db_password`` and ``DB_PASSWORD`` both work under ``SECRET_NAME_PREFIX=prod/``.
``fetch`` returns the ``SecretString`` (text) or the ``SecretBinary`` (bytes); the manager picks a
JSON key and refuses bytes in ``get()`` (``get_bytes()`` returns them). Every read names its
``VersionStage`` explicitly (default ``AWSCURRENT``), or a ``VersionId``; :meth:`fetch_version`
reads ``AWSPENDING`` or ``AWSPREVIOUS`` for rotation code. Several secrets at once are read with
``BatchGetSecretValue``, 20 a call.

Settings and the client live in :mod:`.aws_settings`, error translation in :mod:`.aws_errors`.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from .. import forksafe
from ..errors import BackendError, ConfigurationError, InvalidReferenceError
from ..references import check_name, shown
from ..secret import url_without_credentials
from .aws_errors import (
    NO_BATCH_CODES,
    RETRYABLE_CODES,
    Refused,
    error_code,
    scrubbed,
    translate,
    translate_code,
)
from .aws_settings import (
    JSON_SECRET_KEYS,
    AwsSettings,
    build_client,
    guard_botocore_logs,
    import_boto3,
)
from .base import Fetched, Location

__all__ = ["BATCH_LIMIT", "AwsBackend", "AwsSettings"]

_log = logging.getLogger("yosai_secrets.backends.aws")

#: The most secrets one BatchGetSecretValue call may name (the API's limit).
BATCH_LIMIT: Final = 20
#: The longest wait between two tries of a throttled call.
_MAX_BACKOFF_SECONDS: Final = 5.0


class AwsBackend:
    """Secrets from AWS Secrets Manager (also a ``BatchBackend``).

    Args:
        client: a ready-made boto3 ``secretsmanager`` client (else one is built on first use).
        settings: region, endpoint, prefix, version, retries; usually from :meth:`from_environ`.
        name_prefix: overrides ``settings.name_prefix`` (e.g. ``prod/``).
        version_stage: overrides ``settings.version_stage`` (e.g. ``AWSPENDING``).
        version_id: overrides ``settings.version_id``.
        throttle_retries: how many more times a throttled call is tried, after botocore's own
            retries, with exponential backoff, before it is reported.
        backoff_seconds: the first backoff delay (doubled each time, jittered, at most 5 s).
        sleep: waits between those tries (inject a fake one in tests).

    Raises:
        ConfigurationError: an empty version stage, or a negative retry count.
    """

    name = "aws"

    def __init__(
        self,
        client: Any | None = None,
        *,
        settings: AwsSettings | None = None,
        name_prefix: str | None = None,
        version_stage: str | None = None,
        version_id: str | None = None,
        throttle_retries: int = 2,
        backoff_seconds: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        settings = settings or AwsSettings()
        if name_prefix is not None:
            settings = dataclasses.replace(settings, name_prefix=name_prefix)
        if version_stage is not None:
            settings = dataclasses.replace(settings, version_stage=version_stage)
        if version_id is not None:
            settings = dataclasses.replace(settings, version_id=version_id)
        self.settings = settings
        if not self.settings.version_stage.strip():
            raise ConfigurationError("the AWS version stage must not be empty (e.g. AWSCURRENT)")
        if throttle_retries < 0 or backoff_seconds < 0:
            raise ConfigurationError("throttle_retries and backoff_seconds must not be negative")
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()
        self._throttle_retries = throttle_retries
        self._backoff_seconds = backoff_seconds
        self._sleep = sleep
        self._batch_supported = True
        # An injected client logs through the same botocore loggers as one built here.
        guard_botocore_logs()
        forksafe.register(self)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AwsBackend:
        """Build the backend from the environment (the client itself is built on first use).

        Raises:
            MissingDependencyError: boto3 is not installed.
            ConfigurationError: a variable is malformed; the message names it.
        """
        import_boto3()
        return cls(settings=AwsSettings.from_environ(environ))

    def __repr__(self) -> str:
        return f"AwsBackend(region={self.region!r}, prefix={self.settings.name_prefix!r})"

    @property
    def region(self) -> str:
        """The region read from (as configured, or the client's), for messages."""
        client = self._client
        if client is not None:
            meta = getattr(client, "meta", None)
            return str(getattr(meta, "region_name", None) or "no region")
        return self.settings.region or "the default region"

    def after_fork_in_child(self) -> None:
        """In a forked child: a new lock, and a new client on first use if this backend built it.

        boto3 clients are not fork-safe (their connection pool is shared with the parent). An
        injected client is the caller's: inject a fresh one in the child, or let the backend
        build its own from the settings.
        """
        self._lock = threading.Lock()
        if self._owns_client:
            self._client = None
        else:
            _log.warning(
                "an AWS backend with an injected boto3 client was forked; its connections are "
                "shared with the parent process: build the client after the fork"
            )

    @property
    def client(self) -> Any:
        """The boto3 client, built once (thread-safely) on first use.

        Raises:
            ConfigurationError: no region is configured, or the profile does not exist.
        """
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = build_client(self.settings)
                client = self._client
        return client

    # -- the Backend protocol ----------------------------------------------------------------

    def locate(self, key: str) -> Location:
        """Map ``SECRET_KEY`` or ``prod/db#password`` to a secret name and a JSON key.

        The bare names of :data:`~.aws_settings.JSON_SECRET_KEYS` are keys of one JSON secret:
        ``DB_USER`` is ``DB_CREDENTIALS#username``, ``DB_PASSWORD`` ``DB_CREDENTIALS#password``.

        Raises:
            InvalidReferenceError: an empty name or ``#field``, or a name AWS cannot hold.
        """
        name, sep, json_key = key.partition("#")
        name = name.strip()
        if not name:
            raise InvalidReferenceError(f"AWS secret reference {shown(key)} names no secret")
        if sep and not json_key.strip():
            raise InvalidReferenceError(f"AWS secret reference {shown(key)} has an empty '#key'")
        if not sep and name in JSON_SECRET_KEYS:
            name, json_key = JSON_SECRET_KEYS[name]
            sep = "#"
        prefix = self.settings.name_prefix
        if prefix and not name.startswith((prefix, "arn:")):
            name = prefix + name
        check_name("aws", name, key)
        return Location(name, json_key.strip() if sep else None)

    def fetch(self, path: str) -> Fetched:
        """Read the secret ``path`` at the configured version: its string, or its bytes."""
        if self.settings.version_id:
            # A pinned version id replaces the stage (which defaults to AWSCURRENT).
            return self.fetch_version(path, version_id=self.settings.version_id)
        return self.fetch_version(path, stage=self.settings.version_stage)

    def fetch_version(
        self, path: str, *, stage: str | None = None, version_id: str | None = None
    ) -> str | bytes:
        """Read one version of the secret ``path`` (a full name or ARN; no prefix is added).

        Args:
            path: the secret's name or ARN.
            stage: a staging label (``AWSCURRENT``, ``AWSPENDING``, ``AWSPREVIOUS``); default
                ``AWSCURRENT`` unless ``version_id`` is given.
            version_id: a version's id; with a stage too, AWS checks that they agree.

        Raises:
            SecretNotFoundError: no such secret, or no version with that label or id.
            BackendError: any other failure (a subclass says which kind).
        """
        params: dict[str, str] = {"SecretId": path}
        if version_id:
            params["VersionId"] = version_id
            if stage:
                params["VersionStage"] = stage
        else:
            # Always explicit: AWSCURRENT is what AWS reads by default (GetSecretValue reference),
            # and naming it keeps every read pinned to the label rotation moves.
            params["VersionStage"] = stage or "AWSCURRENT"
        where = params.get("VersionStage") or f"version {version_id}"
        response = self._call("get_secret_value", path, where, params)
        if path not in _requested(response, [path]):
            # Defence in depth: an answer is only ever taken for the secret that was asked for.
            raise BackendError(
                f"aws answered a read of {path!r} with another secret; refusing the value",
                backend="aws",
                path=path,
            )
        return _value_of(response, path)

    def _endpoint(self) -> str:
        meta = getattr(self._client, "meta", None)
        endpoint = self.settings.endpoint_url or getattr(meta, "endpoint_url", None)
        return url_without_credentials(str(endpoint)) if endpoint else "AWS"

    def describe(self, path: str) -> str:
        """Say where ``path`` is read from: backend, secret name, region (never its value)."""
        return f"aws {path} ({self.region})"

    # -- BatchBackend --------------------------------------------------------------------------

    def fetch_many(self, paths: list[str]) -> dict[str, Fetched | Exception]:
        """Read every path, 20 per ``BatchGetSecretValue`` call; each result: value or error.

        A pinned version (``VersionId`` or a stage other than ``AWSCURRENT``, which the batch API
        cannot choose) and a batch API the endpoint or IAM refuses mean one read per path.
        """
        unique = list(dict.fromkeys(paths))
        results: dict[str, Fetched | Exception] = {}
        batchable = (
            self._batch_supported
            and self.settings.version_id is None
            and self.settings.version_stage == "AWSCURRENT"
            and len(unique) > 1
        )
        if batchable:
            for start in range(0, len(unique), BATCH_LIMIT):
                self._fetch_batch(unique[start : start + BATCH_LIMIT], results)
        for path in unique:
            if path not in results:
                try:
                    results[path] = self.fetch(path)
                except ConfigurationError as exc:
                    results[path] = exc
        return results

    def _fetch_batch(self, chunk: list[str], results: dict[str, Fetched | Exception]) -> None:
        params: dict[str, Any] = {"SecretIdList": chunk}
        label = f"{len(chunk)} secrets"
        while True:
            try:
                if not hasattr(self.client, "batch_get_secret_value"):
                    self._batch_supported = False
                    return
                response = self._call(
                    "batch_get_secret_value", label, "AWSCURRENT", params, refuse=NO_BATCH_CODES
                )
            except Refused:
                # Unsupported here, or IAM does not allow it: one read each, precise errors.
                self._batch_supported = False
                return
            except ConfigurationError as exc:
                for path in chunk:
                    results.setdefault(path, exc)
                return
            for item in response.get("SecretValues") or ():
                stages = item.get("VersionStages")
                if stages is not None and "AWSCURRENT" not in stages:
                    # BatchGetSecretValue answers with AWSCURRENT versions (AWS API reference); an
                    # item labelled otherwise is not taken, and the per-secret read decides.
                    continue
                for path in _requested(item, chunk):
                    try:
                        results[path] = _value_of(item, path)
                    except BackendError as exc:
                        results[path] = exc
            for error in response.get("Errors") or ():
                path = str(error.get("SecretId", ""))
                if path in chunk and path not in results:
                    code = str(error.get("ErrorCode", "")) or "UnknownError"
                    if code not in RETRYABLE_CODES:
                        results[path] = translate_code(
                            code, path=path, where="AWSCURRENT", region=self.region, tries=1
                        )
            token = response.get("NextToken")
            if not token:
                return
            params = {"SecretIdList": chunk, "NextToken": token}

    # -- calls and errors ----------------------------------------------------------------------

    def _call(
        self,
        operation: str,
        path: str,
        where: str,
        params: dict[str, Any],
        refuse: frozenset[str] = frozenset(),
    ) -> Any:
        """Call ``operation``, retrying throttling with backoff, and translate what fails.

        An error whose code is in ``refuse`` raises :class:`Refused` instead, for the caller.
        """
        attempt = 0
        while True:
            client = self.client
            try:
                response = getattr(client, operation)(**params)
            except Exception as exc:
                if not type(exc).__module__.startswith("botocore"):
                    raise  # a bug, not an AWS failure: let it show as it is
                code = error_code(exc)
                if code in refuse:
                    raise Refused(code) from None
                if code in RETRYABLE_CODES and attempt < self._throttle_retries:
                    delay = min(_MAX_BACKOFF_SECONDS, self._backoff_seconds * 2**attempt)
                    self._sleep(delay * (0.5 + random.random() / 2))  # noqa: S311 - jitter only
                    attempt += 1
                    continue
                raise translate(
                    exc,
                    path=path,
                    where=where,
                    region=self.region,
                    endpoint=self._endpoint(),
                    tries=attempt + 1,
                ) from scrubbed(exc, operation)
            _log.debug("aws: %s %s (%s) in %s", operation, path, where, self.region)
            return response


def _requested(item: Mapping[str, Any], chunk: list[str]) -> list[str]:
    """Which requested ids (names, ARNs or partial ARNs) an answer is for.

    An answer naming no secret at all (a stubbed client) is taken for what was asked.
    """
    if len(chunk) == 1 and not item.get("Name") and not item.get("ARN"):
        return list(chunk)
    name, arn = str(item.get("Name", "")), str(item.get("ARN", ""))
    return [p for p in chunk if p in (name, arn) or (p.startswith("arn:") and arn.startswith(p))]


def _value_of(response: Mapping[str, Any], path: str) -> str | bytes:
    if response.get("SecretString") is not None:
        return str(response["SecretString"])
    binary = response.get("SecretBinary")
    if isinstance(binary, bytes | bytearray):
        return bytes(binary)
    raise BackendError(
        f"aws secret {path!r} has neither SecretString nor SecretBinary (a version with no "
        "value, e.g. a rotation that never set one)",
        backend="aws",
        path=path,
    )
