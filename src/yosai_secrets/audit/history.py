"""Scanning a repository's whole history: every line any commit added, on any ref.

A value committed and removed later is still in every clone. ``git log -p --all -U0`` streams each
commit's added and removed lines (no context), which are scanned in blocks of whole commits; only
for a hit is the commit, file and line worked out, by looking back from it (the commit marker, the
``+++ b/path`` header, the hunk's ``@@ ... +N`` start). A hit on a removed line is ignored: the
line was reported where it was added. ``bench/scan.py`` measures this against reading every blob
once (``git rev-list --objects`` and ``git cat-file --batch``): on this repository the diffs are
about 40% of the bytes of all blob versions, and scanning is what costs, so diffs win.

Limits: a merge commit's own changes (a conflict resolved by hand) are not shown by ``git log -p``
and so not scanned; binary files are not diffed, so not scanned.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

from ..errors import ConfigurationError
from .encodings import ValueMatcher
from .scan import Finding, find_hits, findings_at

__all__ = ["repository_root", "scan_history"]

_SHORT: Final = 12
_BLOCK_BYTES: Final = 4 * 1024 * 1024
_HUNK: Final = re.compile(rb"@@+ -\S+ \+(\d+)")


def _git(root: Path, *args: str) -> str:
    """Run git in ``root``; its output. Raises ConfigurationError naming the command."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise ConfigurationError("--git needs the git command, which is not installed") from None
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or ["no message"]
        raise ConfigurationError(f"git {args[0]} failed in {root}: {reason[0]}")
    return done.stdout


def repository_root(path: Path) -> Path:
    """The top of the git work tree ``path`` lies in.

    Raises:
        ConfigurationError: ``path`` is not inside a git repository.
    """
    where = path if path.is_dir() else path.parent
    try:
        return Path(_git(where, "rev-parse", "--show-toplevel").strip())
    except ConfigurationError:
        raise ConfigurationError(
            f"--git: {path} is not inside a git repository; scan it without --git"
        ) from None


def scan_history(root: Path, matcher: ValueMatcher, *, shapes: bool) -> list[Finding]:
    """The findings in every line added by any commit reachable from any ref at ``root``.

    Raises:
        ConfigurationError: git failed (the message is git's last line).
    """
    command = [
        "git",
        "-C",
        str(root),
        "-c",
        "core.quotepath=off",
        "log",
        "-p",
        "--all",
        "-U0",
        "--no-color",
        "--no-renames",
        "--no-ext-diff",
        "--no-textconv",
        "--format=%x00%H",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if process.stdout is None or process.stderr is None:  # cannot happen with PIPE; typed out
        raise ConfigurationError("git log could not be read: its output pipes did not open")
    found: list[Finding] = []
    try:
        for block in _blocks(process.stdout):
            for offset, what in find_hits(block, matcher, shapes=shapes):
                where = _where(block, offset)
                if where is not None:
                    commit, path, line = where
                    label = f"{commit[:_SHORT]}:{path}"
                    found.extend(findings_at(label, line, what, commit))
    finally:
        process.stdout.close()
        errors = process.stderr.read().decode("utf-8", "replace")
        process.stderr.close()
    if process.wait() != 0:
        reason = errors.strip().splitlines()[-1:] or ["no message"]
        raise ConfigurationError(f"git log failed in {root}: {reason[0]}")
    return found


def _blocks(stream: IO[bytes]) -> Iterator[bytes]:
    """The stream in blocks of whole commits (each starts with a NUL and the commit's id)."""
    pending = b""
    while chunk := stream.read(_BLOCK_BYTES):
        pending += chunk
        cut = pending.rfind(b"\0")
        if cut > 0:
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        yield pending


def _where(block: bytes, offset: int) -> tuple[str, str, int] | None:
    """The commit, file and line number of the added line holding ``offset``; None otherwise."""
    start = block.rfind(b"\n", 0, offset) + 1
    if not block.startswith(b"+", start) or block.startswith(b"+++ ", start):
        return None  # a removed line, or a header
    marker = block.rfind(b"\0", 0, offset)
    header = block.rfind(b"\n+++ ", marker, start)
    hunk = block.rfind(b"\n@@", header, start)
    if marker < 0 or header < 0 or hunk < 0:
        return None
    commit = block[marker + 1 : block.index(b"\n", marker)].decode("ascii")
    path = block[header + 5 : block.index(b"\n", header + 1)].decode("utf-8", "replace")
    # git ends a name holding a space with a tab, and quotes one holding odd characters.
    path = path.rstrip("\t").strip('"').removeprefix("b/")
    body = block.index(b"\n", hunk + 1) + 1
    first = _HUNK.match(block, hunk + 1)
    if first is None:
        return None
    # Each earlier added line of the hunk comes before this one; removed lines do not count.
    line = int(first[1]) + block.count(b"\n+", body - 1, start - 1)
    return commit, path, line
