"""botocore's errors translated into ours, for the AWS backend.

Every message names the secret, the version asked for and the region, and says what to do; none
quotes botocore's own text for an HTTP error (an AWS signature error can quote the access key id
and the string that was signed), only its error code. The original is replaced as ``__cause__``
by a scrubbed ``ClientError`` that keeps the code and the operation, or, for botocore's own errors
(no connection, a proxy refusing), by a fresh copy whose URLs lost their ``user:password@``: no
traceback of ours, however deep its chain is walked, shows a credential.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ..errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionError,
    BackendTLSError,
    BackendUnavailableError,
    ConfigurationError,
    SecretNotFoundError,
)

__all__ = [
    "AUTH_CODES",
    "NO_BATCH_CODES",
    "PERMISSION_CODES",
    "RETRYABLE_CODES",
    "Refused",
    "error_code",
    "safe_url",
    "scrubbed",
    "translate",
    "translate_code",
    "without_url_credentials",
]

PERMISSION_CODES: Final = frozenset({"AccessDeniedException", "AccessDenied"})
AUTH_CODES: Final = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
    }
)
RETRYABLE_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
# A batch call refused with these is redone one secret at a time: an endpoint without the batch
# API, or IAM allowing GetSecretValue but not BatchGetSecretValue.
NO_BATCH_CODES: Final = frozenset(
    {"UnknownOperationException", "InvalidAction", "NotImplemented", *PERMISSION_CODES}
)


_XML_CODE: Final = re.compile(r"<Code>\s*([A-Za-z0-9.]+)\s*</Code>")


class Refused(Exception):
    """A call refused with one of the codes its caller handles itself."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for any other exception)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    if code.isdigit():
        # An XML error body given to the JSON parser (from a proxy or gateway in front of the
        # endpoint, or an IAM check answering in the query protocol's XML) leaves the HTTP
        # status as the code and the whole body as the message: the code is inside.
        found = _XML_CODE.search(str(error.get("Message") or ""))
        if found:
            return found.group(1)
    return code


def scrubbed(exc: Exception, operation: str) -> BaseException | None:
    """A stand-in for ``exc`` to chain as the cause: nothing in it can hold a credential.

    An AWS error keeps its code, its message withheld (it may quote the access key id or the
    string that was signed). botocore's own errors (no connection, a proxy refusing) are rebuilt
    from their fields with any ``user:password@`` taken out of URLs: the original quotes the
    endpoint or proxy URL as given, and its own chain (urllib3's errors) holds the request.
    None (no cause at all) when an error cannot be rebuilt.
    """
    code = error_code(exc)
    if not code:
        return _rebuilt(exc)
    from botocore.exceptions import ClientError

    status = (getattr(exc, "response", {}).get("ResponseMetadata") or {}).get("HTTPStatusCode")
    withheld: Any = {"Error": {"Code": code, "Message": "(message withheld)"}}
    return ClientError(withheld, f"{operation} (HTTP {status})" if status else operation)


_USERINFO: Final = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]*@")


def without_url_credentials(text: str) -> str:
    """``text`` with the ``user:password@`` part of every URL in it removed."""
    return _USERINFO.sub(r"\1", text)


def _rebuilt(exc: Exception) -> BaseException | None:
    """A fresh copy of a botocore error (no traceback, no chain), its fields scrubbed."""
    fields = getattr(exc, "kwargs", None)
    if not isinstance(fields, dict):
        return None
    # An exception field is named by its type only: http.client's ValueError for a header
    # quotes the header's value (a signature, a session token).
    texts = {
        k: type(v).__name__ if isinstance(v, BaseException) else without_url_credentials(str(v))
        for k, v in fields.items()
    }
    try:
        copy = type(exc)(**texts)
    except Exception:  # an error class whose fields are not all text: no cause rather than it
        return None
    return copy if isinstance(copy, BaseException) else None


def safe_url(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


def translate_code(
    code: str, *, path: str, where: str, region: str, tries: int
) -> ConfigurationError:
    """Our error for the AWS error ``code`` met reading ``path`` (``where``: stage or version)."""
    at = f"aws secret {path!r} ({where}) in {region}"
    if code == "ResourceNotFoundException":
        return SecretNotFoundError(
            path,
            [at],
            "Create it, or check SECRET_NAME_PREFIX, AWS_REGION and the version stage.",
        )
    if code in PERMISSION_CODES:
        return BackendPermissionError(
            f"{at}: access denied ({code}); allow secretsmanager:GetSecretValue on it "
            "(and kms:Decrypt on its key) for the configured AWS identity",
            backend="aws",
            path=path,
        )
    if code in AUTH_CODES:
        return BackendAuthError(
            f"{at}: the AWS credentials were refused ({code}); check AWS_ACCESS_KEY_ID, "
            "AWS_PROFILE or the role, and renew expired session credentials",
            backend="aws",
            path=path,
        )
    if code == "DecryptionFailure":
        return BackendError(
            f"{at}: AWS could not decrypt the secret with its KMS key ({code}); check that "
            "the key exists, is enabled and allows kms:Decrypt for this identity",
            backend="aws",
            path=path,
        )
    if code in RETRYABLE_CODES:
        return BackendUnavailableError(
            f"{at}: AWS Secrets Manager is throttling or unavailable ({code}) after {tries} "
            "tries with backoff; try again later",
            backend="aws",
            path=path,
        )
    if code == "InvalidRequestException":
        return BackendError(
            f"{at}: AWS refused the request ({code}); the secret may be scheduled for "
            "deletion, or the version stage and id disagree",
            backend="aws",
            path=path,
        )
    return BackendError(f"{at}: the AWS call failed ({code})", backend="aws", path=path)


def translate(
    exc: Exception, *, path: str, where: str, region: str, endpoint: str, tries: int
) -> ConfigurationError:
    """Our error for ``exc``, met reading ``path`` from ``endpoint`` in ``region``."""
    code = error_code(exc)
    if code:
        return translate_code(code, path=path, where=where, region=region, tries=tries)
    from botocore import exceptions as bx

    at = f"aws secret {path!r} ({where}) in {region}"
    if isinstance(exc, bx.NoRegionError):
        return ConfigurationError(
            f"no AWS region is configured to read {path!r}: set AWS_REGION "
            "(or AWS_DEFAULT_REGION, or region in the AWS profile)"
        )
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return BackendAuthError(
            f"{at}: no usable AWS credentials were found; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or give the service a role",
            backend="aws",
            path=path,
        )
    if isinstance(exc, bx.SSLError):
        return BackendTLSError(
            f"{at}: the TLS certificate of {safe_url(endpoint)} could not be verified "
            "(AWS_CA_BUNDLE names a CA bundle)",
            backend="aws",
            path=path,
        )
    if isinstance(exc, bx.ConnectionError | bx.HTTPClientError):
        return BackendUnavailableError(
            f"{at}: cannot connect to {safe_url(endpoint)} ({type(exc).__name__}); check "
            "the network, AWS_ENDPOINT_URL and AWS_REGION",
            backend="aws",
            path=path,
        )
    if isinstance(exc, bx.CredentialRetrievalError) or (
        isinstance(exc, bx.BotoCoreError) and "Token" in type(exc).__name__
    ):
        return BackendAuthError(
            f"{at}: the AWS credentials could not be obtained ({type(exc).__name__}); "
            "log in again (aws sso login) or check the role",
            backend="aws",
            path=path,
        )
    return BackendError(
        f"{at}: the AWS call failed ({type(exc).__name__})", backend="aws", path=path
    )
