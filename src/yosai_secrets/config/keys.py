"""Which configuration keys hold secrets.

The six required secrets each have a configuration key and an environment variable name; any
other key whose name says it holds a credential is masked too. A companion setting belongs with
one of them (the database user of ``DB_PASSWORD``) and is obtained the same way, so that the pair
always comes from one place: its variable overrides the file, and its reference is always
resolved. It is neither required nor reported among the six.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "COMPANION_SETTINGS",
    "FALLBACKS_SETTING",
    "SECRET_SETTINGS",
    "dotted",
    "looks_secret_key",
    "not_text",
]

#: Secret name (environment variable, backend key) -> its configuration key, in report order.
SECRET_SETTINGS: Final[dict[str, tuple[str, ...]]] = {
    "SECRET_KEY": ("security", "secret_key"),
    "DB_PASSWORD": ("database", "password"),
    "AUTH0_CLIENT_ID": ("auth0", "client_id"),
    "AUTH0_CLIENT_SECRET": ("auth0", "client_secret"),
    "AUTH0_DOMAIN": ("auth0", "domain"),
    "AUTH0_AUDIENCE": ("auth0", "audience"),
}

#: Setting name (environment variable, backend key) -> its configuration key.
COMPANION_SETTINGS: Final[dict[str, tuple[str, ...]]] = {
    "DB_USER": ("database", "user"),
}

#: Where a configuration file may hold ``SECRET_KEY_FALLBACKS`` (a list, or its stored text).
FALLBACKS_SETTING: Final = ("security", "secret_key_fallbacks")

# Key names that hold credentials by convention (matched on the last key, case-insensitively).
_SECRET_NAME_RE: Final = re.compile(
    r"(password|passwd|secret|token|credential|private_?key|api_?key|fernet|_key$|^key$|dsn$)",
    re.IGNORECASE,
)


def dotted(path: tuple[str, ...]) -> str:
    """``("database", "password")`` -> ``"database.password"``."""
    return ".".join(path)


def looks_secret_key(name: str) -> bool:
    """Tell whether a configuration key's name says it holds a credential."""
    return _SECRET_NAME_RE.search(name) is not None


def not_text(value: object) -> str | None:
    """Say what a YAML value is when it is not text (``"a number"``), or None for a string.

    A secret written unquoted becomes something else (``123456``, ``0755`` read as 493, ``yes``
    read as true, a list, a mapping): such a value is refused, never turned back into text. The
    description holds no example value, which could be the very secret.
    ``None`` (an empty YAML value) counts as text: it means "not set here".
    """
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, bool):
        return "a boolean (YAML reads some unquoted words as true or false)"
    if isinstance(value, int | float):
        return "a number (YAML reads unquoted digits as one, a leading zero as octal)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a YAML {type(value).__name__}"
