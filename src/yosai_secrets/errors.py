"""The one error tree of Yōsai Secrets.

Every failure a user can meet has a type here, and every message names the key, the path or file,
the backend and what to do, but never a secret value, a token or a password. A third-party error
(hvac, botocore, psycopg, OSError) is translated into one of these inside the module that sees it,
``raise OurError(...) from exc``; the original stays as ``__cause__``.

::

    YosaiSecretsError
    ├── ConfigurationError                  what the operator guide calls a configuration error
    │   ├── SecretNotFoundError             no source holds the key (also a LookupError)
    │   ├── InvalidReferenceError           a reference such as ``vault:PATH#FIELD`` is malformed
    │   ├── UnknownBackendError             SECRET_BACKEND names no known backend
    │   ├── MissingDependencyError          an optional package is not installed (names the extra)
    │   ├── SecretFileError                 a secret file is unreadable, binary, too large, unsafe
    │   ├── FileWriteError                  a file could not be written (also an OSError)
    │   ├── DecryptionError                 a Fernet token does not decrypt, or FERNET_KEY is unset
    │   ├── ValidationError                 start-up validation found problems (lists all of them)
    │   ├── StartupError                    the service refuses to start (also a RuntimeError)
    │   │   └── StartupValidationError      ... because validation failed (also a ValidationError)
    │   └── BackendError                    a secret store failed
    │       ├── BackendAuthError            credentials missing, refused or expired
    │       ├── BackendPermissionError      authenticated, but not allowed to read the path
    │       ├── BackendUnavailableError     unreachable, sealed, throttled, timed out
    │       └── BackendTLSError             the server's certificate could not be verified
    └── RotationError                       a rotation step failed (the journal says how to resume)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

__all__ = [
    "BackendAuthError",
    "BackendError",
    "BackendPermissionError",
    "BackendTLSError",
    "BackendUnavailableError",
    "ConfigurationError",
    "DecryptionError",
    "FileWriteError",
    "InvalidReferenceError",
    "MissingDependencyError",
    "RotationError",
    "SecretFileError",
    "SecretNotFoundError",
    "StartupError",
    "StartupValidationError",
    "UnknownBackendError",
    "ValidationError",
    "YosaiSecretsError",
]


_BASE_CONTEXT: Final = BaseException.__dict__["__context__"]


class YosaiSecretsError(Exception):
    """Base of every error raised by Yōsai Secrets.

    It never keeps an implicit ``__context__``. Raised while another exception is handled,
    Python links that one here even after ``raise ... from None``, and it may hold exactly what
    the message left out: a file's bytes (``UnicodeDecodeError.object``), a configuration's
    text, a server's error body with a token. Error reporters walk that link. The cause we chose
    (``raise ... from scrubbed``) stays as ``__cause__``.
    """

    @property
    def __context__(self) -> BaseException | None:
        _BASE_CONTEXT.__set__(self, None)  # drop the link itself, not only hide it
        return None

    @__context__.setter
    def __context__(self, value: BaseException | None) -> None:
        _BASE_CONTEXT.__set__(self, None)


class ConfigurationError(YosaiSecretsError):
    """The configuration or a secret source is wrong or unusable; the message says what to do."""


class SecretNotFoundError(ConfigurationError, LookupError):
    """No source holds the requested secret.

    Attributes:
        key: the requested key.
        places: every place that was looked at, in order (variables, files, paths; no values).
    """

    def __init__(self, key: str, places: Sequence[str], hint: str = "") -> None:
        self.key = key
        self.places = tuple(places)
        self.hint = hint
        looked = "; ".join(self.places) if self.places else "no source was configured"
        message = f"secret {key!r} was not found (looked at: {looked})"
        if hint:
            message += f". {hint}"
        super().__init__(message)

    def __str__(self) -> str:
        # LookupError would quote the message like a KeyError; keep it readable.
        return str(self.args[0])


class InvalidReferenceError(ConfigurationError):
    """A secret reference is malformed."""


class UnknownBackendError(ConfigurationError):
    """A backend name is not one of the known backends."""


class MissingDependencyError(ConfigurationError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{purpose} needs the {package!r} package, which is not installed; "
            f"install it with: pip install 'yosai-secrets[{extra}]'"
        )


class SecretFileError(ConfigurationError):
    """A secret file cannot be used (unreadable, not UTF-8, too large, a directory, unsafe name)."""


class FileWriteError(ConfigurationError, OSError):
    """A file could not be written; the message names it and what to do.

    A :class:`~yosai_secrets.errors.ConfigurationError`, and an :class:`OSError` too, so that code
    written against the plain write (``except OSError``) still catches it; ``strerror`` holds the
    system's reason (``Operation not permitted``).
    """


class DecryptionError(ConfigurationError):
    """An encrypted value could not be decrypted."""


class ValidationError(ConfigurationError):
    """Validation found one or more problems; all of them are listed."""

    def __init__(
        self, problems: Iterable[str], *, heading: str = "configuration is invalid"
    ) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{heading} ({len(self.problems)} problem(s)):\n{lines}")


class StartupError(ConfigurationError, RuntimeError):
    """The service refuses to start because a required secret is missing or unusable."""


class StartupValidationError(StartupError, ValidationError):
    """Start-up validation failed: a refusal to start and a ValidationError of all problems."""


class BackendError(ConfigurationError):
    """A secret store failed to answer with the secret.

    Attributes:
        backend: the backend's name (``env``, ``vault``, ``aws``).
        path: the path or secret name that was read, if any.
    """

    def __init__(self, message: str, *, backend: str, path: str | None = None) -> None:
        self.backend = backend
        self.path = path
        super().__init__(message)

    def for_key(self, key: str) -> BackendError:
        """This error naming ``key`` too: the read of a path is shared by the keys it holds.

        ``DB_PASSWORD`` and ``DB_USER`` may come from one read of ``DB_CREDENTIALS``; whoever
        asked for ``DB_PASSWORD`` is told so. The shared error is left as it is (other callers
        hold it); the copy keeps its type, attributes and cause.
        """
        if key in str(self):
            return self
        named = type(self).__new__(type(self))
        named.__dict__.update(self.__dict__)
        named.args = (f"{key}: {self}",)
        named.__cause__ = self.__cause__
        return named


class BackendAuthError(BackendError):
    """The backend's credentials are missing, refused or expired."""


class BackendPermissionError(BackendError):
    """The credentials are valid but may not read this path."""


class BackendUnavailableError(BackendError):
    """The backend cannot be reached or cannot serve now (sealed, throttled, timed out)."""


class BackendTLSError(BackendError):
    """The backend's TLS certificate could not be verified."""


class RotationError(YosaiSecretsError):
    """A rotation step failed; the message names the step and how to resume or abort."""
