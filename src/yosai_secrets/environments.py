"""The deployment environments and what each requires.

``YOSAI_ENV`` is one of ``development``, ``test``, ``staging``, ``production``; unset means
``production``, so that a forgotten variable fails closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .errors import ConfigurationError

__all__ = [
    "ENVIRONMENTS",
    "REQUIRED_SECRETS",
    "current_environment",
    "required_secrets",
]

ENVIRONMENTS: Final = ("development", "test", "staging", "production")

#: The six secrets the dashboard needs, in the order they are reported.
REQUIRED_SECRETS: Final = (
    "SECRET_KEY",
    "DB_PASSWORD",
    "AUTH0_CLIENT_ID",
    "AUTH0_CLIENT_SECRET",
    "AUTH0_DOMAIN",
    "AUTH0_AUDIENCE",
)


def current_environment(environ: Mapping[str, str]) -> str:
    """Return ``YOSAI_ENV`` (default ``production``).

    Raises:
        ConfigurationError: it names no known environment.
    """
    raw = environ.get("YOSAI_ENV", "").strip().lower()
    if not raw:
        return "production"
    if raw not in ENVIRONMENTS:
        raise ConfigurationError(
            f"YOSAI_ENV={raw!r} is not a known environment; use one of {', '.join(ENVIRONMENTS)}"
        )
    return raw


def required_secrets(env: str) -> tuple[str, ...]:
    """The secrets that must be present in ``env``: all six in production, else SECRET_KEY."""
    return REQUIRED_SECRETS if env == "production" else ("SECRET_KEY",)
