"""What a rotation did (or, for a dry run, would do), without a single value in it.

A report says what was done, what was held and why, and the single command to run next. Its exit
status is the command line's: 0 done, 2 refused or failed, 3 held (the rotation waits for
``rotate --restart``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Final

from ..secret import MASK
from .generate import DEFAULT_NBYTES, FALLBACKS_KEY

__all__ = [
    "EXIT_DONE",
    "EXIT_HELD",
    "EXIT_REFUSED",
    "Outcome",
    "RotationReport",
    "masked_changes",
]

EXIT_DONE: Final = 0
EXIT_REFUSED: Final = 2
#: The rotation is held: the new values cannot reach the app yet; ``rotate --restart`` goes on.
EXIT_HELD: Final = 3


class Outcome(StrEnum):
    """How a ``rotate`` run ended (or, in a dry run, would end)."""

    PENDING = "pending"  # still running (never in a returned report)
    ROTATED = "rotated"
    AWAITING_OPERATOR = "awaiting-operator"  # held: exit 3
    FINISHED = "finished"
    ABORTED = "aborted"
    RESTARTED = "restarted"
    NOTHING_TO_DO = "nothing-to-do"
    SET_UP = "set-up"  # --setup-alternating created or completed the second role
    REFUSED = "refused"  # a dry run's prediction of a refusal (exit 2)


@dataclass
class RotationReport:
    """The outcome of one ``rotate`` run: what was done, held, told, and the command to run next.

    ``steps`` are the steps that changed something, in order; ``skipped`` the steps recorded as
    done with nothing to do (``"step: why"``). A dry run fills both with what the real run would
    do, and ``outcome``/``exit_code`` with how it would end.
    """

    action: str
    manifest: str
    outcome: Outcome = Outcome.PENDING
    dry_run: bool = False
    keys: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    resumed: bool = False
    created_manifest: bool = False
    applied: bool = False
    restarted: bool = False
    target: str = ""  # where kubectl applied: context and namespace
    not_applied_reason: str = ""
    held_reason: str = ""
    refusal: str = ""
    next_command: str = ""
    next_note: str = ""
    notified: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    store: str = "env"
    database: dict[str, str] | None = None
    journal: str = ""
    changes: list[dict[str, str]] = field(default_factory=list)
    # An incident: what stopped the leaked values (one line each: role, sessions, store versions).
    incident: bool = False
    cut: list[str] = field(default_factory=list)
    terminated_sessions: int = 0
    purged: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 done, 2 refused, 3 held."""
        if self.outcome is Outcome.REFUSED:
            return EXIT_REFUSED
        return EXIT_HELD if self.outcome is Outcome.AWAITING_OPERATOR else EXIT_DONE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (no values: there are none in a report), with the exit status."""
        return {**asdict(self), "exit_code": self.exit_code}


def masked_changes(keys: list[str]) -> list[dict[str, str]]:
    """What a rotation of ``keys`` changes, every value masked."""
    bits = DEFAULT_NBYTES * 8
    changes = [
        {"key": key, "old": MASK, "new": f"{MASK} (new random value, {bits} bits)"} for key in keys
    ]
    if "SECRET_KEY" in keys:
        changes.append(
            {"key": FALLBACKS_KEY, "old": MASK, "new": f"{MASK} (+ the previous SECRET_KEY)"}
        )
    return changes
