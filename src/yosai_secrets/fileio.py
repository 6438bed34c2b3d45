"""Atomic, private file writes: a file is wholly old or wholly new, never readable by others.

Temporary files are named ``.<name>.<random>.yosai-tmp`` beside their target: a pattern the
repository's ``.gitignore`` ignores, so a crash never leaves the whole new file (secrets included)
where ``git add`` would pick it up, and :func:`remove_leftovers` (called before each write) deletes
what an earlier crashed run left.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

from .errors import FileWriteError

__all__ = ["TEMP_SUFFIX", "FileWriteError", "atomic_write_text", "remove_leftovers"]

#: The suffix of every temporary file this module writes (git-ignored).
TEMP_SUFFIX: Final = ".yosai-tmp"


def atomic_write_text(
    path: str | Path, text: str, *, mode: int = 0o600, what: str = "the file"
) -> None:
    """Write ``text`` to ``path`` atomically, with ``mode`` or the existing file's stricter one.

    The text goes to a temporary file in the same directory, created private (so it is never
    readable by others, not even for a moment), is flushed to disk, then renamed over ``path``. A
    crash leaves either the old file or the new one, never half of either. When ``path`` is a
    symbolic link, the file it points to is replaced (the link stays a link). An existing file's
    permissions are kept when they are stricter than ``mode`` (a 0400 manifest stays 0400).

    Args:
        what: what the file is, for messages (``"the Secret manifest"``).

    Raises:
        FileWriteError: the file cannot be written (an immutable file or directory, a
            read-only file system, a directory in its place, a full disk); the message names the
            file and what to do, and the file is left as it was.
    """
    target = Path(path)
    if "\0" in str(target):
        shown = str(target).replace("\0", "\\0")
        raise FileWriteError(f"cannot write {what} {shown}: a path cannot hold a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # its .object is the whole text: never chained, never shown
        raise FileWriteError(
            f"cannot write {what} {target}: the text holds a character UTF-8 cannot encode "
            "(a lone surrogate); nothing was written"
        ) from None
    try:
        if target.is_symlink():
            target = target.resolve()
        _write(target, text, mode)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        error = FileWriteError(
            f"cannot write {what} {target}: {reason}; {_fix_for(exc, target)}, then run the "
            "command again (the file is unchanged)"
        )
        error.strerror = reason
        raise error from None
    with contextlib.suppress(OSError):
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _write(target: Path, text: str, mode: int) -> None:
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


def _fix_for(exc: OSError, target: Path) -> str:
    """What the operator can do about ``exc`` (a write of ``target`` failed)."""
    if exc.errno in (errno.EPERM, errno.EACCES):
        return (
            f"make {target} and its directory {target.parent} writable for this user (an "
            f"immutable file or directory refuses even root: `lsattr -d {target.parent} {target}` "
            "shows the i flag, `chattr -i` removes it)"
        )
    if exc.errno == errno.EROFS:
        return f"{target.parent} is on a read-only file system; write the file elsewhere"
    if exc.errno == errno.EISDIR:
        return f"{target} is a directory; move it away so that the file can be written there"
    if exc.errno == errno.ENOTDIR:
        return f"a part of {target.parent} is a file, not a directory; fix the path"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"free space on the file system of {target.parent}"
    return f"check {target} and its directory {target.parent}"


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
