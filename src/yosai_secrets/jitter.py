"""Random spreading of refresh and retry times, so that a fleet never acts in the same second.

Every process that started in the same minute would otherwise refresh its secrets in the same
second, once per TTL, and every client that saw one outage would retry in step. The draws come
from ``os.urandom``: a forked child never repeats its parent's draws (a seeded generator copied by
``fork`` would), no ``random.seed()`` in the application can put pods back in step, and importing
this module imports nothing (``random`` costs milliseconds at start-up).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Final

from .envvars import env_seconds
from .errors import ConfigurationError

__all__ = [
    "DEFAULT_JITTER",
    "Rng",
    "full_jitter",
    "jitter_from_environ",
    "shortened",
    "urandom_fraction",
]

#: The default of ``SECRET_CACHE_JITTER``: expiries drawn over the last 10% of the TTL.
DEFAULT_JITTER: Final = 0.1

#: A source of floats in [0, 1).
Rng = Callable[[], float]

_SCALE: Final = float(1 << 53)


def urandom_fraction() -> float:
    """A float in [0, 1) from the kernel's generator (about a microsecond; fork-safe)."""
    return (int.from_bytes(os.urandom(7), "big") >> 3) / _SCALE


def shortened(seconds: float, jitter: float, rng: Rng = urandom_fraction) -> float:
    """``seconds`` shortened by a random part of at most ``jitter`` of it: in [s*(1-j), s].

    Used for expiries: a value is never kept longer than the TTL the operator set, and a fleet
    that started together spreads its refreshes over the last ``jitter`` of the TTL.
    """
    if jitter <= 0 or seconds <= 0:
        return seconds
    return seconds * (1.0 - jitter * rng())


def full_jitter(cap_seconds: float, rng: Rng = urandom_fraction) -> float:
    """A wait drawn uniformly in [0, cap] ("full jitter", the spread that least bunches retries)."""
    return cap_seconds * rng() if cap_seconds > 0 else 0.0


def jitter_from_environ(environ: Mapping[str, str]) -> float:
    """``SECRET_CACHE_JITTER``: a fraction of the TTL in [0, 1] (default 0.1; 0: off).

    Raises:
        ConfigurationError: not a number, or outside [0, 1].
    """
    raw = environ.get("SECRET_CACHE_JITTER", "").strip()
    advice = "set it to a fraction of SECRET_CACHE_TTL between 0 and 1, e.g. 0.1 (0 turns it off)"
    try:
        value = env_seconds(environ, "SECRET_CACHE_JITTER", DEFAULT_JITTER)
    except ConfigurationError:
        raise ConfigurationError(
            f"SECRET_CACHE_JITTER={raw!r} is not a fraction; {advice}"
        ) from None
    if value > 1 or raw.endswith("s"):
        raise ConfigurationError(f"SECRET_CACHE_JITTER={raw!r} is out of range; {advice}")
    return value
