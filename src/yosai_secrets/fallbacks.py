"""The ``SECRET_KEY_FALLBACKS`` format: one parser and one writer, for the library and rotation.

The stored form is a **JSON list of strings**, ``'["previous-key"]'`` (what ``yosai-secrets
rotate`` writes): a Kubernetes Secret, an environment variable, a Docker secret file and a Vault
or AWS field can only hold text, and Flask wants a real list.

What :func:`parse_fallbacks` reads:

- nothing (``None``, an empty or blank string): no fallback;
- a string starting with ``[``: a JSON list of strings, and nothing else (anything that is not
  valid JSON, or not a list of strings, is an error, never guessed at);
- any other string: written by hand, a list of keys separated by commas or newlines
  (``old-1,old-2``, or one key per line in a Docker secret file); a string without a comma or
  newline is **one** key, never a list of characters;
- a list or tuple of strings (a Flask config that already holds a list), or a
  :class:`~yosai_secrets.secret.Secret` holding any of the strings above.

Entries are stripped; empty ones and repeats are dropped, order kept. A key cannot contain a comma
or a newline in the hand-written form; write the JSON list for such a key (generated keys are
URL-safe and never do).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Final

from .errors import ConfigurationError

__all__ = ["FALLBACKS_KEY", "format_fallbacks", "parse_fallbacks"]

#: The key that holds the previous ``SECRET_KEY`` values while a rotation is open.
FALLBACKS_KEY: Final = "SECRET_KEY_FALLBACKS"

_SEPARATORS: Final = re.compile(r"[,\n]")


def parse_fallbacks(raw: object) -> list[str]:
    """Turn ``SECRET_KEY_FALLBACKS`` as stored anywhere into a list of keys (see the module).

    Raises:
        ConfigurationError: the value is none of the accepted forms (the message never shows it).
    """
    if raw is None:
        return []
    reveal = getattr(raw, "reveal", None)
    if callable(reveal):
        raw = reveal()
    items: Iterable[object]
    if isinstance(raw, list | tuple):
        items = raw
    elif isinstance(raw, str):
        text = raw.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                loaded = json.loads(text)
            except ValueError:
                raise ConfigurationError(
                    f"{FALLBACKS_KEY} starts with '[' but is not a valid JSON list; write it as "
                    '["old-key"] (what rotation stores) or as comma-separated keys'
                ) from None
            if not isinstance(loaded, list):
                raise ConfigurationError(f"{FALLBACKS_KEY} must be a JSON list of strings")
            items = loaded
        else:
            items = _SEPARATORS.split(text)
    else:
        raise ConfigurationError(
            f"{FALLBACKS_KEY} must be a JSON list of strings, got a {type(raw).__name__}"
        )
    keys: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(f"{FALLBACKS_KEY} must hold strings only")
        key = item.strip()
        if key and key not in keys:
            keys.append(key)
    return keys


def format_fallbacks(keys: Iterable[str]) -> str:
    """Format keys as the stored JSON list (stripped, without empties or repeats, order kept)."""
    return json.dumps(parse_fallbacks(list(keys)), separators=(", ", ": "))
