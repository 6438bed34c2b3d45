"""Settings of the AWS backend, read from the environment, and the boto3 client built from them.

Unset settings fall back to boto3's own configuration (the shared config and credentials files,
instance roles, SSO), so the backend behaves as boto3 users expect. The variables:

==================================  ==========================================================
``AWS_REGION``                      the region (else ``AWS_DEFAULT_REGION``, else the profile's)
``AWS_PROFILE``                     the named profile of the AWS config files
``AWS_ENDPOINT_URL``                another endpoint (``AWS_ENDPOINT_URL_SECRETS_MANAGER`` wins)
``AWS_RETRY_MODE``                  botocore's retry mode (default ``standard``)
``AWS_MAX_ATTEMPTS``                botocore's attempts per call (its default when unset)
``SECRET_NAME_PREFIX``              prepended to secret names (e.g. ``prod/``)
``AWS_SECRET_VERSION_STAGE``        the staging label read (default ``AWSCURRENT``)
``AWS_SECRET_VERSION_ID``           a version id to read instead of a stage
==================================  ==========================================================

:data:`JSON_SECRET_KEYS` is where the bare names that must change together live: ``DB_USER`` and
``DB_PASSWORD`` are the ``username`` and ``password`` of one JSON secret, ``DB_CREDENTIALS`` (under
the prefix), so that one version holds a matching pair. Reading (``AwsBackend.locate``) and the
rotation store (``AwsStore``) both use this one mapping.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from ..envvars import env_int
from ..errors import ConfigurationError, MissingDependencyError
from ..references import shown
from ..secret import url_without_credentials

__all__ = [
    "JSON_SECRET_KEYS",
    "AwsSettings",
    "build_client",
    "guard_botocore_logs",
    "import_boto3",
]

#: Bare names read from a key of a JSON secret: name -> (secret name before the prefix, JSON key).
#: A database user and its password are one secret, so readers never see an old user with a new
#: password, and a rotation promotes both in one step.
JSON_SECRET_KEYS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "DB_USER": ("DB_CREDENTIALS", "username"),
        "DB_PASSWORD": ("DB_CREDENTIALS", "password"),
    }
)

_PURPOSE: Final = "the AWS Secrets Manager backend (SECRET_BACKEND=aws, aws-secrets: references)"
# botocore loggers whose DEBUG lines carry response bodies (secret values), request dumps and
# signing material (the access key id, a session token).
_LABEL: Final = re.compile(r"[A-Za-z0-9_+=,.@-]{1,256}")
_VERSION_ID: Final = re.compile(r"[A-Za-z0-9-]{32,64}")
_WIRE_LOGGERS: Final = ("botocore.parsers", "botocore.endpoint", "botocore.auth")
#: The loggers that quote an endpoint or proxy URL (as given, credentials included).
_URL_LOGGERS: Final = (
    "botocore.regions",
    "botocore.client",
    "botocore.httpsession",
    "botocore.hooks",
    "botocore.retryhandler",
    "botocore.retries.standard",
    "botocore.utils",
    "urllib3.connectionpool",
    "urllib3.poolmanager",
)


def import_boto3() -> Any:
    """Import boto3, or say how to install it.

    Raises:
        MissingDependencyError: boto3 is not installed.
    """
    try:
        import boto3
    except ImportError:
        raise MissingDependencyError("boto3", "aws", _PURPOSE) from None
    return boto3


class _DropWireDebug(logging.Filter):
    """Drops botocore's DEBUG wire dumps, which would show secret values and signing material."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


class _ScrubUrlCredentials(logging.Filter):
    """Takes ``user:password@`` out of the URLs botocore logs (the endpoint it resolved)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from .aws_errors import without_url_credentials

        try:
            rendered = record.getMessage()
        except Exception:  # a broken record: leave it to logging's own error handling
            return True
        scrubbed = without_url_credentials(rendered)
        if scrubbed != rendered:
            record.msg, record.args = scrubbed, ()
        return True


def guard_botocore_logs() -> None:
    """Drop botocore's DEBUG wire dumps and scrub URLs, whoever turned DEBUG on (idempotent).

    A client built by the caller with ``http://user:password@host`` as its endpoint logs that URL
    at DEBUG (``Endpoint provider result: ...``); a filter on each logger that does takes the
    credentials out (a logger's filters see only its own records, not its children's).
    """
    for name in _WIRE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropWireDebug) for f in logger.filters):
            logger.addFilter(_DropWireDebug())
    for name in _URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ScrubUrlCredentials) for f in logger.filters):
            logger.addFilter(_ScrubUrlCredentials())


@dataclass(frozen=True)
class AwsSettings:
    """Where and how to read AWS secrets; ``None`` means boto3's own configuration decides.

    Attributes:
        region: the region.
        profile: the named profile.
        endpoint_url: another endpoint (an emulator, a VPC endpoint).
        name_prefix: prepended to secret names.
        version_stage: the staging label read by ``fetch``.
        version_id: a version id read by ``fetch`` instead of the stage.
        retry_mode: botocore's retry mode.
        max_attempts: botocore's attempts per call.
        connect_timeout_seconds: how long to wait for a connection.
        read_timeout_seconds: how long to wait for an answer.
    """

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    name_prefix: str = ""
    version_stage: str = "AWSCURRENT"
    version_id: str | None = None
    retry_mode: str = "standard"
    max_attempts: int | None = None
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 10.0
    # Keys found in the environment given (which need not be os.environ); as in boto3's own
    # chain, they win over the profile.
    credentials: tuple[str, str, str | None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not _LABEL.fullmatch(self.version_stage.strip() or "x"):
            raise ConfigurationError(
                f"AWS_SECRET_VERSION_STAGE {shown(self.version_stage)} is not a staging label "
                "(letters, digits and _+=,.@-, such as AWSCURRENT or AWSPENDING)"
            )
        if self.version_id is not None and not _VERSION_ID.fullmatch(self.version_id):
            raise ConfigurationError(
                f"AWS_SECRET_VERSION_ID {shown(self.version_id)} is not a version id (32 to 64 "
                "letters, digits and -)"
            )
        names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        for name, value in zip(names, self.credentials or (), strict=False):
            # Never repeated; a line break would reach http.client, whose ValueError quotes
            # the whole signed header.
            if value is not None and not (value.isascii() and value.isprintable()):
                raise ConfigurationError(
                    f"{name} holds a character a signed AWS request cannot carry (a line "
                    "break, a non-ASCII letter); set it to the credential alone"
                )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AwsSettings:
        """Read the settings from ``environ`` (the variables are in the module docstring).

        Raises:
            ConfigurationError: ``AWS_MAX_ATTEMPTS`` is not a whole number >= 1, or the endpoint
                URL holds a user name or password.
        """

        def get(name: str) -> str | None:
            return (environ.get(name) or "").strip() or None

        attempts = env_int(environ, "AWS_MAX_ATTEMPTS", None, minimum=1)
        endpoint = None
        if (get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") or "").lower() != "true":
            endpoint = get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or get("AWS_ENDPOINT_URL")
        if endpoint and url_without_credentials(endpoint) != endpoint:
            variable = (
                "AWS_ENDPOINT_URL_SECRETS_MANAGER"
                if get("AWS_ENDPOINT_URL_SECRETS_MANAGER")
                else "AWS_ENDPOINT_URL"
            )
            raise ConfigurationError(
                f"{variable} holds a user name or password (user:password@host); AWS requests "
                "are signed with the AWS credentials, never with URL credentials, which would "
                f"only be shown in logs and tracebacks: remove them from {variable}"
            )
        if endpoint and not endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"the endpoint URL {shown(endpoint)} (AWS_ENDPOINT_URL or "
                "AWS_ENDPOINT_URL_SECRETS_MANAGER) is not an http:// or https:// URL"
            )
        key_id, secret = get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")
        return cls(
            region=get("AWS_REGION") or get("AWS_DEFAULT_REGION"),
            profile=get("AWS_PROFILE"),
            endpoint_url=endpoint,
            name_prefix=(environ.get("SECRET_NAME_PREFIX") or "").strip(),
            version_stage=get("AWS_SECRET_VERSION_STAGE") or "AWSCURRENT",
            version_id=get("AWS_SECRET_VERSION_ID"),
            retry_mode=get("AWS_RETRY_MODE") or "standard",
            max_attempts=attempts,
            credentials=(key_id, secret, get("AWS_SESSION_TOKEN")) if key_id and secret else None,
        )


def _config(s: AwsSettings) -> Any:
    """botocore's ``Config`` for ``s``: retries, timeouts, our user agent."""
    from botocore.config import Config

    retries: Any = {"mode": s.retry_mode}
    if s.max_attempts is not None:
        # AWS_MAX_ATTEMPTS counts every try, the first included: botocore calls that
        # total_max_attempts (its Config "max_attempts" counts retries only).
        retries["total_max_attempts"] = s.max_attempts
    return Config(
        retries=retries,
        connect_timeout=s.connect_timeout_seconds,
        read_timeout=s.read_timeout_seconds,
        user_agent_extra="yosai-secrets",
    )


def build_client(settings: AwsSettings) -> Any:
    """Build a boto3 ``secretsmanager`` client from ``settings`` and boto3's configuration.

    Raises:
        MissingDependencyError: boto3 is not installed.
        ConfigurationError: no region is configured, the profile does not exist, or the
            endpoint is not a URL.
    """
    boto3 = import_boto3()
    from botocore.exceptions import NoRegionError, ProfileNotFound

    s = settings
    config = _config(s)
    key_id, secret, token = s.credentials or (None, None, None)
    guard_botocore_logs()
    try:
        session = boto3.session.Session(profile_name=s.profile, region_name=s.region)
        return session.client(
            "secretsmanager",
            # user:password@ in an endpoint is never used to sign, only echoed by botocore's
            # messages and DEBUG logs: it never reaches botocore.
            endpoint_url=url_without_credentials(s.endpoint_url) if s.endpoint_url else None,
            config=config,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=token,
        )
    except ValueError:  # botocore: "Invalid endpoint: ..."
        raise ConfigurationError(
            f"the AWS endpoint URL {shown(url_without_credentials(s.endpoint_url or ''))} is not "
            "a valid URL; fix AWS_ENDPOINT_URL"
        ) from None
    except NoRegionError:
        raise ConfigurationError(
            "no AWS region is configured for the aws secret backend: set AWS_REGION "
            "(or AWS_DEFAULT_REGION, or region in the AWS profile)"
        ) from None
    except ProfileNotFound:
        raise ConfigurationError(
            f"the AWS profile {s.profile!r} (AWS_PROFILE) is not in the AWS config files; "
            "fix AWS_PROFILE or unset it"
        ) from None
