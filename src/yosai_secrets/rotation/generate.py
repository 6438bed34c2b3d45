"""New secret values; the ``SECRET_KEY_FALLBACKS`` list format is re-exported from the library.

The format (a JSON list of strings; see :mod:`yosai_secrets.fallbacks`) has one parser and one
writer, shared with the Flask extension: what rotation writes is what the app reads.

A placeholder of the shipped example (``replace-me-secret-key``) is not a key anybody signed a
session with: a rotation never keeps one as a fallback (:func:`is_placeholder`, the library's one
rule, also used by ``check`` and the posture page).
"""

from __future__ import annotations

import secrets
from typing import Final

from ..fallbacks import FALLBACKS_KEY, format_fallbacks, parse_fallbacks
from ..placeholders import PLACEHOLDER_PREFIX, is_placeholder

__all__ = [
    "DEFAULT_NBYTES",
    "FALLBACKS_KEY",
    "PLACEHOLDER_PREFIX",
    "format_fallbacks",
    "generate_value",
    "is_placeholder",
    "parse_fallbacks",
]

#: 48 random bytes = 384 bits, above the 256 the policy asks for.
DEFAULT_NBYTES: Final = 48


def generate_value(nbytes: int = DEFAULT_NBYTES) -> str:
    """Return a new URL-safe random value from :mod:`secrets` with ``nbytes`` bytes of entropy.

    Raises:
        ValueError: fewer than 32 bytes (256 bits) were asked for.
    """
    if nbytes < 32:
        raise ValueError("a rotated secret needs at least 32 random bytes (256 bits)")
    return secrets.token_urlsafe(nbytes)
