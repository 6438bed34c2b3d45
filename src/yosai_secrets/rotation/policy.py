"""The rotation policy: every rotated secret is younger than ``ROTATION_MAX_AGE_DAYS`` (90).

The policy lives in the library (:mod:`yosai_secrets.rotation_age`), so that the posture page
judges ages without loading the rotation package; these are the same objects, re-exported for
rotation code.
"""

from __future__ import annotations

from ..rotation_age import DEFAULT_MAX_AGE_DAYS, Verdict, judge, max_age_days, parse_time

__all__ = ["DEFAULT_MAX_AGE_DAYS", "Verdict", "judge", "max_age_days", "parse_time"]
