"""The typed state of one rotation: its phase, its steps, its values and the database plan.

This is what the journal holds. :func:`state_from_json` checks every field of a journal's JSON and
says which one is wrong; the journal module turns that into an error that names the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeVar

__all__ = [
    "ABORT_STEPS",
    "FINISH_STEPS",
    "JOURNAL_FORMAT",
    "READABLE_FORMATS",
    "ROTATE_STEPS",
    "DatabasePlan",
    "DbMode",
    "JournalContentError",
    "RotationPhase",
    "RotationState",
    "Step",
    "state_from_json",
]

# Format 2: ``db`` is null when no role is managed (format 1 wrote {"managed": false}), and the
# first save already records ``prepare``, so a journal never holds an empty step list.
# Format 3: the manifest is written before the role's password changes (a rotation that cannot
# reach the app holds there), and the journal records the values' digest, when the cluster got
# them, and whether the role was touched. A version that reads only formats 1-2 must not resume it.
# Format 4: an incident's rotation (``incident``: no grace, the ``db-cut`` step). A version that
# does not know it would resume an incident as a routine rotation and keep the leaked credential.
JOURNAL_FORMAT: Final = 4
READABLE_FORMATS: Final = (1, 2, 3, 4)


class Step(StrEnum):
    """One idempotent step of a rotation, a finish or an abort (the value is its journal name)."""

    PREPARE = "prepare"
    STORE_STAGE = "store-stage"
    MANIFEST = "manifest"
    # One role: the Secret reaches the cluster before the role's password changes.
    APPLY_SECRET = "apply-secret"  # noqa: S105 (a step's name)
    DB_SET = "db-set"
    DB_TEST = "db-test"
    # An incident only: the leaked password stops logging in and its open sessions are ended.
    DB_CUT = "db-cut"
    STORE_PROMOTE = "store-promote"
    INVALIDATE = "invalidate"
    APPLY = "apply"
    FINISH_MANIFEST = "finish-manifest"
    FINISH_STORE = "finish-store"
    FINISH_DB = "finish-db"
    FINISH_INVALIDATE = "finish-invalidate"
    FINISH_APPLY = "finish-apply"
    ABORT_MANIFEST = "abort-manifest"
    ABORT_STORE = "abort-store"
    ABORT_DB = "abort-db"
    ABORT_INVALIDATE = "abort-invalidate"
    ABORT_APPLY = "abort-apply"


ROTATE_STEPS: Final = tuple(s for s in Step if not s.startswith(("finish-", "abort-")))
FINISH_STEPS: Final = tuple(s for s in Step if s.startswith("finish-"))
ABORT_STEPS: Final = tuple(s for s in Step if s.startswith("abort-"))


class RotationPhase(StrEnum):
    """Where a rotation stands."""

    ROTATE = "rotate"  # rotate steps under way (re-run `rotate` to resume)
    # Held before the role's password changes (or before promotion, for a password this tool
    # does not change): the new values cannot reach the app yet, `rotate --restart` goes on.
    AWAITING_OPERATOR = "awaiting-operator"
    ROTATED = "rotated"  # every rotate step done; open until --finish or --abort
    FINISH = "finish"  # --finish under way
    ABORT = "abort"  # --abort under way


class DbMode(StrEnum):
    """How the database password changes."""

    SINGLE = "single"  # the app's role gets a new password
    ALTERNATING = "alternating"  # the idle one of two roles gets it, and the app switches


@dataclass
class DatabasePlan:
    """The database role a rotation changes (only when an admin connection is configured)."""

    mode: DbMode
    role: str  # the role whose password changes
    active: str  # the role the app logs in as before the rotation
    target: str  # host, port and database, never a password
    # The exact stored verifier (a salted hash, never the password) restores it on abort.
    previous_verifier: str | None = field(default=None, repr=False)

    def describe(self) -> dict[str, str]:
        """Mode, role and target, for a report."""
        return {"mode": self.mode, "role": self.role, "target": self.target}


@dataclass
class RotationState:
    """Everything a rotation needs to resume, finish or abort: the journal's contents.

    ``store`` belongs to the secret store (versions, request tokens): it is handed to the store's
    methods as a plain dict, which they update. The repr never shows a value.
    """

    id: str
    started_at: str
    manifest: str
    keys: list[str]
    old: dict[str, str] = field(repr=False)
    new: dict[str, str] = field(repr=False)
    annotations: dict[str, str | None]
    deployment: str
    namespace: str | None
    store: dict[str, Any] = field(repr=False)
    db: DatabasePlan | None = None
    plain: list[str] = field(default_factory=list)  # entries of old/new that are not secrets
    absent: list[str] = field(default_factory=list)  # entries the manifest did not hold before
    unmanaged: list[str] = field(default_factory=list)  # passwords changed by the operator
    hold: bool = False  # a password needs the operator's hand: hold until `rotate --restart`
    applied: bool = False  # the cluster received the new values
    operator_done: bool = False
    finish_fallbacks: str | None = field(default=None, repr=False)
    digest: str | None = None  # the new values' SHA-256 (the manifest's annotation), not secret
    old_digest: str | None = None  # the manifest's digest annotation before, for an abort
    applied_at: str | None = None  # when the cluster got them and the rollout completed (UTC)
    db_touched: bool = False  # an ALTER ROLE of this rotation may have run
    # An incident: no grace (no fallback kept, the leaked credential cut, old versions purged).
    incident: bool = False
    phase: RotationPhase = RotationPhase.ROTATE
    steps: list[Step] = field(default_factory=lambda: [Step.PREPARE])
    format: int = field(default=JOURNAL_FORMAT, init=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (enum members are strings), the journal's current format."""
        return asdict(self)


class JournalContentError(ValueError):
    """A journal's JSON is not a rotation state this version can use; the message says why."""


_E = TypeVar("_E", bound=StrEnum)


class _Fields:
    """Typed access to a journal's JSON object; each reader names the field it rejects."""

    def __init__(self, raw: Mapping[str, object]) -> None:
        self._raw = raw

    def _get(self, name: str) -> object:
        if name not in self._raw:
            raise JournalContentError(f"lacks the field {name!r}")
        return self._raw[name]

    @staticmethod
    def _wrong(name: str, expected: str) -> JournalContentError:
        return JournalContentError(f"has a field {name!r} that is not {expected}")

    def text(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str) or not value:
            raise self._wrong(name, "a non-empty string")
        return value

    def is_null(self, name: str) -> bool:
        return self._get(name) is None

    def optional_text(self, name: str) -> str | None:
        value = self._raw.get(name)
        if value is not None and not isinstance(value, str):
            raise self._wrong(name, "a string or null")
        return value

    def flag(self, name: str, *, default: bool | None = None) -> bool:
        value = self._raw.get(name, default) if default is not None else self._get(name)
        if not isinstance(value, bool):
            raise self._wrong(name, "true or false")
        return value

    def texts(self, name: str) -> list[str]:
        value = self._get(name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._wrong(name, "a list of strings")
        return list(value)

    def table(self, name: str, *, nullable: bool = False) -> dict[str, Any]:
        value = self._get(name)
        allowed = (str, type(None)) if nullable else (str,)
        if not isinstance(value, dict) or not all(isinstance(v, allowed) for v in value.values()):
            raise self._wrong(name, "an object of strings")
        return dict(value)

    def mapping(self, name: str) -> dict[str, Any]:
        value = self._get(name)
        if not isinstance(value, dict):
            raise self._wrong(name, "an object")
        return dict(value)

    def choice(self, name: str, kind: type[_E]) -> _E:
        value = self._get(name)
        if isinstance(value, str) and value in kind.__members__.values():
            return kind(value)
        raise self._wrong(name, f"one of {', '.join(kind)}")


def state_from_json(raw: Mapping[str, object], version: int) -> RotationState:
    """The rotation state in ``raw``, a journal of format ``version`` (one of READABLE_FORMATS).

    Raises:
        JournalContentError: a field is missing, has the wrong type, or the fields disagree.
    """
    fields = _Fields(raw)
    state = RotationState(
        id=fields.text("id"),
        started_at=fields.text("started_at"),
        manifest=fields.text("manifest"),
        keys=fields.texts("keys"),
        old=fields.table("old"),
        new=fields.table("new"),
        annotations=fields.table("annotations", nullable=True),
        deployment=fields.text("deployment"),
        namespace=fields.optional_text("namespace"),
        store=fields.mapping("store"),
        db=_db_from_json(fields, version),
        plain=fields.texts("plain"),
        absent=fields.texts("absent"),
        unmanaged=fields.texts("unmanaged"),
        hold=fields.flag("hold"),
        applied=fields.flag("applied"),
        operator_done=fields.flag("operator_done", default=False),
        finish_fallbacks=fields.optional_text("finish_fallbacks"),
        digest=fields.optional_text("digest"),
        old_digest=fields.optional_text("old_digest"),
        applied_at=fields.optional_text("applied_at"),
        db_touched=_db_touched(fields, version),
        incident=fields.flag("incident", default=False),
        phase=fields.choice("phase", RotationPhase),
        steps=_steps_from_json(fields),
    )
    _check_consistent(state)
    return state


def _db_from_json(fields: _Fields, version: int) -> DatabasePlan | None:
    if fields.is_null("db"):  # format 2: no role is managed
        return None
    raw = fields.mapping("db")
    if version == 1 and raw.get("managed") is False:
        return None
    db = _Fields(raw)
    return DatabasePlan(
        mode=db.choice("mode", DbMode),
        role=db.text("role"),
        active=db.text("active"),
        target=db.text("target"),
        previous_verifier=db.optional_text("previous_verifier"),
    )


def _db_touched(fields: _Fields, version: int) -> bool:
    if version >= 3:
        return fields.flag("db_touched")
    # Formats 1-2 changed the password right after store-stage: assume it may have run since.
    return Step.STORE_STAGE.value in fields.texts("steps")


def _steps_from_json(fields: _Fields) -> list[Step]:
    names = fields.texts("steps")
    if not names:
        raise JournalContentError("records no step, not even 'prepare' (it is half-written)")
    try:
        steps = [Step(name) for name in names]
    except ValueError:
        raise JournalContentError("records a step this version does not know") from None
    if steps[0] is not Step.PREPARE:
        raise JournalContentError("does not record 'prepare' as its first step")
    return steps


def _check_consistent(state: RotationState) -> None:
    if not state.keys:
        raise JournalContentError("names no key to rotate")
    for group, values in (("old", state.old), ("new", state.new)):
        if not set(state.keys) <= set(values):
            raise JournalContentError(f"lacks the {group} value of a key it rotates")
