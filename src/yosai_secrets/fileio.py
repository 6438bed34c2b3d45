"""Atomic, private file writes: a file is wholly old or wholly new, never readable by others.

Temporary files are named ``.<name>.<random>.yosai-tmp`` beside their target: a pattern the
repository's ``.gitignore`` ignores, so a crash never leaves the whole new file (secrets included)
where ``git add`` would pick it up, and :func:`remove_leftovers` (called before each write) deletes
what an earlier crashed run left.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

__all__ = ["TEMP_SUFFIX", "atomic_write_text", "remove_leftovers"]

#: The suffix of every temporary file this module writes (git-ignored).
TEMP_SUFFIX: Final = ".yosai-tmp"


def atomic_write_text(path: str | Path, text: str, *, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` atomically, with ``mode`` or the existing file's stricter one.

    The text goes to a temporary file in the same directory, created private (so it is never
    readable by others, not even for a moment), is flushed to disk, then renamed over ``path``. A
    crash leaves either the old file or the new one, never half of either. When ``path`` is a
    symbolic link, the file it points to is replaced (the link stays a link). An existing file's
    permissions are kept when they are stricter than ``mode`` (a 0400 manifest stays 0400).
    """
    target = Path(path)
    if target.is_symlink():
        target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        mode &= stat.S_IMODE(target.stat().st_mode)
    remove_leftovers(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def remove_leftovers(path: str | Path) -> list[Path]:
    """Delete the temporary files an interrupted write of ``path`` left; return them.

    Also the ``.<name>.<random>.tmp`` files of earlier versions of this module.
    """
    target = Path(path)
    removed = []
    for pattern in (f".{target.name}.*{TEMP_SUFFIX}", f".{target.name}.*.tmp"):
        for leftover in target.parent.glob(pattern):
            with contextlib.suppress(OSError):
                leftover.unlink()
                removed.append(leftover)
    return removed
