"""The outcome of one step of an incident (or of any multi-step operation that must go on)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

__all__ = ["Status", "StepOutcome"]


class Status(StrEnum):
    """How a step ended."""

    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    MANUAL = "manual"  # nothing we can do here: the report lists it as a step for a person


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """One step: what it was, how it ended and a detail line for the report.

    ``detail`` is shown to operators and written to reports: names, paths, counts and versions
    only, never a value.
    """

    step: str
    status: Status
    detail: str = ""
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def failed(self) -> bool:
        """True when the step was tried and did not succeed."""
        return self.status is Status.FAILED
