"""Secret rotation: the staged, resumable protocol for the manifest, the stores and PostgreSQL.

>>> from yosai_secrets.rotation import RotationEngine, RotationOptions
>>> RotationEngine(RotationOptions()).rotate()  # doctest: +SKIP

See ``docs/rotation.md`` for the operator's view.
"""

from __future__ import annotations

from .engine import RotationEngine
from .generate import FALLBACKS_KEY, format_fallbacks, generate_value, parse_fallbacks
from .plan import DEFAULT_MANIFEST, RotationOptions
from .policy import DEFAULT_MAX_AGE_DAYS
from .report import Outcome, RotationReport
from .state import ABORT_STEPS, FINISH_STEPS, ROTATE_STEPS, RotationPhase, Step

__all__ = [
    "ABORT_STEPS",
    "DEFAULT_MANIFEST",
    "DEFAULT_MAX_AGE_DAYS",
    "FALLBACKS_KEY",
    "FINISH_STEPS",
    "ROTATE_STEPS",
    "Outcome",
    "RotationEngine",
    "RotationOptions",
    "RotationPhase",
    "RotationReport",
    "Step",
    "format_fallbacks",
    "generate_value",
    "parse_fallbacks",
]
