"""Which configuration keys hold secrets.

The six required secrets each have a configuration key and an environment variable name; any
other key whose name says it holds a credential is masked too.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["SECRET_SETTINGS", "dotted", "looks_secret_key"]

#: Secret name (environment variable, backend key) -> its configuration key, in report order.
SECRET_SETTINGS: Final[dict[str, tuple[str, ...]]] = {
    "SECRET_KEY": ("security", "secret_key"),
    "DB_PASSWORD": ("database", "password"),
    "AUTH0_CLIENT_ID": ("auth0", "client_id"),
    "AUTH0_CLIENT_SECRET": ("auth0", "client_secret"),
    "AUTH0_DOMAIN": ("auth0", "domain"),
    "AUTH0_AUDIENCE": ("auth0", "audience"),
}

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
