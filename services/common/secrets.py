"""The documented import path of the secret helpers.

``from services.common.secrets import get_secret, invalidate_secret`` works from the repository
root, as the operator guide says; both are the ones of :mod:`yosai_secrets`.
"""

from yosai_secrets import ConfigurationError, SecretNotFoundError, get_secret, invalidate_secret

__all__ = ["ConfigurationError", "SecretNotFoundError", "get_secret", "invalidate_secret"]
