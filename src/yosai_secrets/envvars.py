"""Reading numbers and switches from environment variables, with one clear message per mistake.

Every setting of ours that is a number or a boolean (``SECRET_CACHE_TTL``, ``VAULT_TIMEOUT``,
``VAULT_MAX_RETRIES``, ``VAULT_SKIP_VERIFY``, ``ROTATION_MAX_AGE_DAYS``, ``AWS_MAX_ATTEMPTS``,
``WEB_CONCURRENCY``, ``GUNICORN_THREADS``) is read through these functions, so that all of them
accept the same spellings and fail the same way: a :class:`~yosai_secrets.errors.ConfigurationError`
naming the variable, what it holds and an example.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, overload

from .errors import ConfigurationError

__all__ = ["env_bool", "env_int", "env_seconds"]

# strconv.ParseBool, as the vault command reads VAULT_SKIP_VERIFY.
_TRUE: Final = frozenset({"1", "t", "true", "yes", "y", "on"})
_FALSE: Final = frozenset({"0", "f", "false", "no", "n", "off"})


def env_seconds(
    environ: Mapping[str, str],
    name: str,
    default: float,
    *,
    minimum: float = 0.0,
    exclusive: bool = False,
) -> float:
    """A number of seconds (``5``, ``2.5`` or, as the vault command writes it, ``30s``).

    Args:
        environ: the environment to read.
        name: the variable.
        default: the value when it is unset or empty.
        minimum: the least accepted value.
        exclusive: the value must be strictly greater than ``minimum``.

    Raises:
        ConfigurationError: not a number, or out of range.
    """
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw.removesuffix("s"))
    except ValueError:
        raise ConfigurationError(
            f"{name}={raw!r} is not a number of seconds; set it to e.g. {_example(default)}"
        ) from None
    if value != value or value < minimum or (exclusive and value == minimum):  # NaN too
        bound = f"> {_example(minimum)}" if exclusive else f">= {_example(minimum)}"
        raise ConfigurationError(f"{name}={raw!r} must be a number of seconds {bound}")
    return value


@overload
def env_int(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int: ...


@overload
def env_int(
    environ: Mapping[str, str], name: str, default: None, *, minimum: int = 0
) -> int | None: ...


def env_int(
    environ: Mapping[str, str], name: str, default: int | None, *, minimum: int = 0
) -> int | None:
    """A whole number (``2``); ``default`` (which may be None: "let the library decide") if unset.

    Raises:
        ConfigurationError: not a whole number, or below ``minimum``.
    """
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        example = default if default is not None else max(minimum, 1)
        raise ConfigurationError(
            f"{name}={raw!r} is not a whole number; set it to e.g. {example}"
        ) from None
    if value < minimum:
        raise ConfigurationError(f"{name}={raw!r} must be a whole number >= {minimum}")
    return value


def env_bool(environ: Mapping[str, str], name: str, default: bool = False) -> bool:
    """A switch: ``true``/``false`` (and ``1``/``0``, ``yes``/``no``, ``on``/``off``, ``t``/``f``).

    Raises:
        ConfigurationError: anything else.
    """
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean; use true or false")


def _example(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
