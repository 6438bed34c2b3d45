"""Yōsai Secrets: secrets and secure configuration for Python services.

>>> from yosai_secrets import get_secret
>>> get_secret("DB_PASSWORD")  # doctest: +SKIP

Importing this package imports none of boto3, hvac, Flask, Dash or click: each is imported when
first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .cache import CacheStats
from .errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionError,
    BackendTLSError,
    BackendUnavailableError,
    ConfigurationError,
    DecryptionError,
    InvalidReferenceError,
    MissingDependencyError,
    RotationError,
    SecretFileError,
    SecretNotFoundError,
    StartupError,
    StartupValidationError,
    UnknownBackendError,
    ValidationError,
    YosaiSecretsError,
)
from .manager import SecretManager, get_secret, invalidate_secret
from .references import Reference, parse_reference
from .secret import RedactingFilter, Secret, install_redaction

if TYPE_CHECKING:
    from .config import ConfigManager, SecureConfigManager

__version__ = "0.1.0"

__all__ = [
    "BackendAuthError",
    "BackendError",
    "BackendPermissionError",
    "BackendTLSError",
    "BackendUnavailableError",
    "CacheStats",
    "ConfigManager",
    "ConfigurationError",
    "DecryptionError",
    "InvalidReferenceError",
    "MissingDependencyError",
    "RedactingFilter",
    "Reference",
    "RotationError",
    "Secret",
    "SecretFileError",
    "SecretManager",
    "SecretNotFoundError",
    "SecureConfigManager",
    "StartupError",
    "StartupValidationError",
    "UnknownBackendError",
    "ValidationError",
    "YosaiSecretsError",
    "__version__",
    "get_secret",
    "install_redaction",
    "invalidate_secret",
    "parse_reference",
]


def __getattr__(name: str) -> Any:
    # The configuration layer imports PyYAML; a service that only calls get_secret never pays it.
    if name in ("ConfigManager", "SecureConfigManager"):
        from . import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
