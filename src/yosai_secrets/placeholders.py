"""The example's placeholder values: a secret that holds one is not set.

``k8s/config/api-secrets.example.yaml`` ships values such as ``replace-me-secret-key``, to be
replaced before use. A secret still holding one is reported as "not set" by ``yosai-secrets
check`` and the posture page, and refused at start-up in production. Messages say "placeholder",
never the value.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PLACEHOLDER_PREFIX", "PLACEHOLDER_WORDING", "is_placeholder"]

#: Every value that starts with this (case and surrounding space aside) is a placeholder.
PLACEHOLDER_PREFIX: Final = "replace-me"
#: How reports describe such a value.
PLACEHOLDER_WORDING: Final = "not set (it holds the example's placeholder)"


def is_placeholder(value: object) -> bool:
    """Tell whether ``value`` is text that starts with ``replace-me`` (an example's placeholder)."""
    return isinstance(value, str) and value.strip().lower().startswith(PLACEHOLDER_PREFIX)
