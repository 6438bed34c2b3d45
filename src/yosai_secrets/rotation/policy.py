"""The rotation policy: every rotated secret is younger than ``ROTATION_MAX_AGE_DAYS`` (90)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from ..errors import ConfigurationError

__all__ = ["DEFAULT_MAX_AGE_DAYS", "Verdict", "judge", "max_age_days", "parse_time"]

DEFAULT_MAX_AGE_DAYS: Final = 90


def max_age_days(environ: Mapping[str, str], override: int | None = None) -> int:
    """The policy's maximum age in days: ``override``, else ``ROTATION_MAX_AGE_DAYS``, else 90.

    Raises:
        ConfigurationError: the variable is not a positive whole number.
    """
    if override is not None:
        days = override
    else:
        raw = environ.get("ROTATION_MAX_AGE_DAYS", "").strip()
        if not raw:
            return DEFAULT_MAX_AGE_DAYS
        try:
            days = int(raw)
        except ValueError:
            raise ConfigurationError(
                f"ROTATION_MAX_AGE_DAYS={raw!r} is not a whole number of days; e.g. 90"
            ) from None
    if days <= 0:
        raise ConfigurationError(f"the rotation policy's maximum age must be positive, not {days}")
    return days


@dataclass(frozen=True)
class Verdict:
    """One secret's standing against the policy (``ok``, ``due-soon``, ``overdue``, ``unknown``)."""

    key: str
    source: str
    rotated_at: datetime | None
    age_days: float | None
    state: str

    @property
    def failing(self) -> bool:
        """Overdue, or never rotated as far as anyone can tell."""
        return self.state in ("overdue", "unknown")


def judge(
    key: str, source: str, rotated_at: datetime | None, now: datetime, max_days: int
) -> Verdict:
    """Judge one secret's last rotation against ``max_days``; due-soon is the last tenth."""
    if rotated_at is None:
        return Verdict(key, source, None, None, "unknown")
    age = (now - rotated_at) / timedelta(days=1)
    if age > max_days:
        state = "overdue"
    elif age > max_days * 0.9:
        state = "due-soon"
    else:
        state = "ok"
    return Verdict(key, source, rotated_at, round(age, 1), state)


def parse_time(stamp: str) -> datetime | None:
    """Parse an ISO 8601 time (``Z``, nanoseconds allowed) as UTC-aware; None if it is not one."""
    text = stamp.strip().replace("Z", "+00:00")
    # Vault gives nanoseconds; datetime takes microseconds.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
