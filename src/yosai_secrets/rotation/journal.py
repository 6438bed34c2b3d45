"""The rotation journal: a 0600 JSON file next to the manifest that makes a rotation resumable.

It is written (atomically, fsynced) before any system starts to depend on a new value, and after
every step. It holds the old and the new values, so that at every moment a durable place holds
every credential that some system accepts; it is deleted when the rotation is finished or aborted.
Its ``repr`` shows the step names only, never a value.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from ..errors import RotationError
from ..fileio import atomic_write_text
from ..secret import register_secret_value

__all__ = ["JOURNAL_SUFFIX", "Journal", "exclusive", "journal_path"]

JOURNAL_SUFFIX: Final = ".journal.json"
_FORMAT: Final = 1


def journal_path(manifest: str | Path) -> Path:
    """Where the journal of the rotation of ``manifest`` lives (``<manifest>.journal.json``)."""
    manifest = Path(manifest)
    return manifest.with_name(manifest.name + JOURNAL_SUFFIX)


@contextlib.contextmanager
def exclusive(journal: Path) -> Iterator[None]:
    """Hold the rotation's lock file (``<journal>.lock``) so that two runs never interleave.

    Raises:
        RotationError: another run holds it.
    """
    import fcntl

    lock_path = journal.with_name(journal.name.removesuffix(".json") + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RotationError(
                f"another rotation of this manifest is running (lock {lock_path}); wait for it"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock, also when the process dies


class Journal:
    """The state of one rotation: its phase, its values and the steps done.

    ``data`` is a plain JSON-able dict; :meth:`save` makes it durable.
    """

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self._register()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, phase={self.phase!r}, done={self.done_steps()!r})"

    @classmethod
    def create(cls, path: Path, data: dict[str, Any]) -> Journal:
        """Make a new journal and write it durably."""
        journal = cls(path, {"format": _FORMAT, "steps": [], **data})
        journal.save()
        return journal

    @classmethod
    def load(cls, path: Path) -> Journal | None:
        """Read the journal at ``path``; None when there is none.

        Raises:
            RotationError: the file is unreadable or not a journal of ours.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RotationError(
                f"cannot read the rotation journal {path}: {exc.strerror}"
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise RotationError(
                f"the rotation journal {path} is corrupt; it holds the old and new values: "
                "inspect it by hand before deleting it"
            ) from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise RotationError(f"{path} is not a rotation journal this version understands")
        return cls(path, data)

    @property
    def phase(self) -> str:
        """``rotate``, ``rotated``, ``awaiting-operator``, ``finish`` or ``abort``."""
        return str(self.data.get("phase", "rotate"))

    def set_phase(self, phase: str) -> None:
        """Enter ``phase`` and save."""
        self.data["phase"] = phase
        self.save()

    def done_steps(self) -> list[str]:
        """The steps recorded as done, in order."""
        return [str(s) for s in self.data.get("steps", [])]

    def is_done(self, step: str) -> bool:
        """Whether ``step`` is recorded as done."""
        return step in self.data.get("steps", [])

    def mark(self, step: str, **facts: Any) -> None:
        """Record ``step`` as done (with any facts learnt) and save."""
        self.data.update(facts)
        if step not in self.data["steps"]:
            self.data["steps"].append(step)
        self.save()

    def save(self) -> None:
        """Write the journal atomically, mode 0600, fsynced."""
        atomic_write_text(self.path, json.dumps(self.data, indent=2, sort_keys=True) + "\n")

    def delete(self) -> None:
        """Remove the journal (the rotation is over)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _register(self) -> None:
        # Whatever the journal holds must never reach a log line.
        plain = set(self.data.get("plain") or ())  # role names, not secrets
        for group in ("old", "new"):
            for key, value in (self.data.get(group) or {}).items():
                if key not in plain and isinstance(value, str) and value:
                    register_secret_value(value)
