"""The rotation journal: a 0600 JSON file next to the manifest that makes a rotation resumable.

It is written (atomically, fsynced) before any system starts to depend on a new value, and after
every step. It holds the old and the new values, so that at every moment a durable place holds
every credential that some system accepts; it is deleted when the rotation is finished or aborted.

Its contents are a :class:`~.state.RotationState` with a ``format`` number, checked field by field
on load: a file that is not a journal this version can use is a :class:`RotationError` that names
the file and says what is safe to do with it. Its ``repr`` shows the phase and steps, never a value.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from ..errors import RotationError
from ..secret import register_secret_value
from .state import (
    JOURNAL_FORMAT,
    READABLE_FORMATS,
    JournalContentError,
    RotationPhase,
    RotationState,
    Step,
    state_from_json,
)

__all__ = ["JOURNAL_SUFFIX", "TEMP_MARK", "Journal", "exclusive", "journal_path"]

JOURNAL_SUFFIX: Final = ".journal.json"
# `<journal>.tmp-<random>`: matches the .gitignore patterns of journals (`*.journal*`).
TEMP_MARK: Final = ".tmp-"


def journal_path(manifest: str | Path) -> Path:
    """Where the journal of the rotation of ``manifest`` lives (``<manifest>.journal.json``)."""
    manifest = Path(manifest)
    return manifest.with_name(manifest.name + JOURNAL_SUFFIX)


@contextlib.contextmanager
def exclusive(journal: Path) -> Iterator[None]:
    """Hold the rotation's lock file (``<journal>.lock``) so that two runs never interleave.

    Holding it, remove the temporary files a killed run left behind (see :data:`TEMP_MARK`).

    Raises:
        RotationError: another run holds it.
    """
    import fcntl

    lock_path = journal.with_name(journal.name.removesuffix(".json") + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise RotationError(
            f"cannot create the rotation's lock file in {lock_path.parent}: "
            f"{exc.strerror or type(exc).__name__}; the rotation writes its journal and the "
            "manifest there: make the directory writable (an immutable one: lsattr, chattr -i) "
            "and run the same command again"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RotationError(
                f"another rotation of this manifest is running (lock {lock_path}); wait for it"
            ) from None
        _remove_leftovers(journal)
        yield
    finally:
        os.close(fd)  # closing releases the lock, also when the process dies


class Journal:
    """The durable record of one rotation: ``path`` and the typed ``state`` saved there."""

    def __init__(self, path: Path, state: RotationState) -> None:
        self.path = path
        self.state = state
        self._register()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, phase={self.phase!r}, done={self.done_steps()!r})"

    @classmethod
    def create(cls, path: Path, state: RotationState) -> Journal:
        """Write a new journal durably: afterwards it exists whole, or (on a crash) not at all."""
        journal = cls(path, state)
        journal.save()
        return journal

    @classmethod
    def load(cls, path: Path) -> Journal | None:
        """Read the journal at ``path``; None when there is none.

        Raises:
            RotationError: the file is unreadable, or not a journal this version can use; the
                message names the file and what is safe to do with it.
        """
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RotationError(
                f"cannot read the rotation journal {path}: {exc.strerror}; fix its permissions "
                "and run the same command again"
            ) from None
        return cls(path, _parse(path, data))

    @property
    def phase(self) -> RotationPhase:
        """Where the rotation stands."""
        return self.state.phase

    @property
    def data(self) -> Mapping[str, Any]:
        """A read-only view of what :meth:`save` writes (change ``state``, not this)."""
        return MappingProxyType(self.state.to_json())

    def set_phase(self, phase: RotationPhase) -> None:
        """Enter ``phase`` and save."""
        self.state.phase = phase
        self.save()

    def done_steps(self) -> list[Step]:
        """The steps recorded as done, in order."""
        return list(self.state.steps)

    def is_done(self, step: Step) -> bool:
        """Whether ``step`` is recorded as done."""
        return step in self.state.steps

    def mark(self, step: Step) -> None:
        """Record ``step`` as done and save."""
        if step not in self.state.steps:
            self.state.steps.append(step)
        self.save()

    def save(self) -> None:
        """Write the journal atomically, mode 0600, fsynced.

        Raises:
            RotationError: the file cannot be written (no space, no permission).
        """
        text = json.dumps(self.state.to_json(), indent=2, sort_keys=True) + "\n"
        try:
            _write_private(self.path, text)
        except OSError as exc:
            raise RotationError(
                f"cannot write the rotation journal {self.path}: {exc.strerror or exc}; fix "
                "that and run the same command again (every step can be run again)"
            ) from exc

    def delete(self) -> None:
        """Remove the journal (the rotation is over)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _register(self) -> None:
        # Whatever the journal holds must never reach a log line.
        plain = set(self.state.plain)  # role names, not secrets
        for values in (self.state.old, self.state.new):
            for key, value in values.items():
                if key not in plain and value:
                    register_secret_value(value)


# -- reading -------------------------------------------------------------------------------------


def _parse(path: Path, data: bytes) -> RotationState:
    """The state in ``data``, or a RotationError naming ``path`` and the safe way out."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise _unusable(path, "is not text (binary data)", None) from None
    except json.JSONDecodeError as exc:
        problem = (
            "is empty"
            if not data.strip()
            else f"is not valid JSON (truncated or overwritten; line {exc.lineno} "
            f"column {exc.colno})"
        )
        raise _unusable(path, problem, None) from None
    except RecursionError:
        raise _unusable(path, "is not a rotation journal (JSON nested too deeply)", None) from None
    if not isinstance(raw, dict):
        raise _unusable(path, f"holds a JSON {type(raw).__name__}, not a rotation journal", None)
    version = raw.get("format")
    if type(version) is not int or version not in READABLE_FORMATS:
        raise _wrong_format(path, raw)
    try:
        return state_from_json(raw, version)
    except JournalContentError as exc:
        raise _unusable(path, str(exc), raw.get("steps")) from None


def _wrong_format(path: Path, raw: dict[str, Any]) -> RotationError:
    version = raw.get("format")
    if type(version) is int and version > JOURNAL_FORMAT:
        return RotationError(
            f"the rotation journal {path} was written by a newer yosai-secrets (journal format "
            f"{version}; this version reads formats {READABLE_FORMATS[0]} to {JOURNAL_FORMAT}): "
            "resume, finish or abort that rotation with the version that started it "
            "(`yosai-secrets rotate`, `rotate --finish` or `rotate --abort`); do not delete it "
            "while that rotation is open"
        )
    problem = "has no 'format' field" if version is None else "has an unknown 'format'"
    return _unusable(
        path, f"{problem}: it is not a rotation journal of this tool", raw.get("steps")
    )


def _unusable(path: Path, problem: str, steps: object) -> RotationError:
    return RotationError(f"the rotation journal {path} {problem}. {_advice(path, steps)}")


def _advice(path: Path, steps: object) -> str:
    """What is safe to do with an unusable journal, judged by the steps it says were done."""
    recorded = steps if isinstance(steps, list) else None
    delete = f"`rm {shlex.quote(str(path))}`"
    if recorded is not None and set(recorded) <= {Step.PREPARE.value}:
        return (
            "It records no step after 'prepare', so nothing outside this file uses its values: "
            f"delete it ({delete}), then run `yosai-secrets rotate` again."
        )
    repair = (
        "`yosai-secrets rotate --abort` cannot read it either: restore it from a backup or "
        "repair it by hand ('old' holds the previous values, 'new' the rotated ones), then run "
        "`yosai-secrets rotate` to resume or `yosai-secrets rotate --abort` to roll back."
    )
    if recorded is not None:
        return (
            "It records steps after 'prepare', so the database or the secret store may already "
            f"use a password that only this file holds: do not delete it. {repair}"
        )
    return (
        "If no rotation of this manifest was started since the last --finish or --abort, "
        f"delete it ({delete}) and run `yosai-secrets rotate` again. Otherwise do not delete it: "
        "it may hold the only copy of a password the database or the secret store now uses. "
        f"{repair}"
    )


# -- writing -------------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through ``<path>.tmp-<random>`` (0600, fsynced, renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}{TEMP_MARK}{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    # Exception, not BaseException: a kill leaves the temporary file, and so does an interrupt;
    # the next run removes it (exclusive()), so cleaning up here is only a courtesy.
    except Exception:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _remove_leftovers(journal: Path) -> None:
    """Remove the temporary files of a killed run (ours, and those of the previous version)."""
    ours = journal.name + TEMP_MARK
    previous = f".{journal.name}."  # fileio.atomic_write_text's `.<name>.<random>.tmp`
    with contextlib.suppress(FileNotFoundError):
        for entry in journal.parent.iterdir():
            name = entry.name
            if name.startswith(ours) or (name.startswith(previous) and name.endswith(".tmp")):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
