"""New secret values, and the ``SECRET_KEY_FALLBACKS`` list format.

``SECRET_KEY_FALLBACKS`` is stored as a JSON list of strings (``'["old-key"]'``), because a
Kubernetes Secret, an environment variable and a Vault field can only hold text. Flask wants a
real list: a bare string given as fallbacks is split into one-character keys.
:func:`parse_fallbacks` never turns a string into a list of characters.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Final

from ..errors import ConfigurationError

__all__ = [
    "DEFAULT_NBYTES",
    "FALLBACKS_KEY",
    "format_fallbacks",
    "generate_value",
    "parse_fallbacks",
]

#: 48 random bytes = 384 bits, above the 256 the policy asks for.
DEFAULT_NBYTES: Final = 48
#: The key that holds the previous ``SECRET_KEY`` values while a rotation is open.
FALLBACKS_KEY: Final = "SECRET_KEY_FALLBACKS"


def generate_value(nbytes: int = DEFAULT_NBYTES) -> str:
    """Return a new URL-safe random value from :mod:`secrets` with ``nbytes`` bytes of entropy.

    Raises:
        ValueError: fewer than 32 bytes (256 bits) were asked for.
    """
    if nbytes < 32:
        raise ValueError("a rotated secret needs at least 32 random bytes (256 bits)")
    return secrets.token_urlsafe(nbytes)


def parse_fallbacks(raw: str | Iterable[str] | None) -> list[str]:
    """Parse ``SECRET_KEY_FALLBACKS`` into a list of keys.

    Accepts a JSON list of strings (the stored form), a list already, an empty value, or, for
    hand-written values, a comma-separated string. A single string without commas is one key.

    Raises:
        ConfigurationError: the value is JSON but not a list of strings.
    """
    if raw is None:
        return []
    if not isinstance(raw, str):
        return [str(item) for item in raw if str(item)]
    text = raw.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigurationError(
                f"{FALLBACKS_KEY} starts with '[' but is not a JSON list; store it as a JSON "
                'list of strings, e.g. ["old-key"]'
            ) from None
        if not isinstance(loaded, list) or not all(isinstance(i, str) for i in loaded):
            raise ConfigurationError(f"{FALLBACKS_KEY} must be a JSON list of strings")
        return [item for item in loaded if item]
    return [part.strip() for part in text.split(",") if part.strip()]


def format_fallbacks(keys: Iterable[str]) -> str:
    """Format keys as the stored JSON list (without duplicates, order kept)."""
    seen: list[str] = []
    for key in keys:
        if key and key not in seen:
            seen.append(key)
    return json.dumps(seen, separators=(", ", ": "))
