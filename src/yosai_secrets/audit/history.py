"""Scanning a repository's whole history: every blob once, then where the guilty ones came from.

A value committed and removed later is still in every clone. ``git log -p --all`` would show it,
but diffs every commit and repeats a file's lines in each change; instead, every distinct blob
reachable from any ref is listed once (``git rev-list --objects --all``, blobs only, size-limited
by git itself), read through one ``git cat-file --batch`` process and scanned in memory. Only for
the few blobs with a finding is the commit that added them looked up (one ``git log --raw`` pass,
oldest first). ``bench/scan.py`` measures this against ``git log -p``.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

from ..errors import ConfigurationError
from .encodings import ValueMatcher
from .scan import Finding, scan_bytes

__all__ = ["repository_root", "scan_history"]

_SHORT: Final = 12


def _git(root: Path, *args: str) -> str:
    """Run git in ``root``; its output. Raises ConfigurationError naming the command."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            check=False,
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


def scan_history(
    root: Path, matcher: ValueMatcher, *, shapes: bool, max_bytes: int
) -> list[Finding]:
    """The findings in every blob reachable from any ref of the repository at ``root``."""
    names = _blobs(root, max_bytes)
    hits: dict[str, list[Finding]] = {}
    for oid, data in _contents(root, list(names)):
        found = scan_bytes(data, "", matcher, shapes=shapes)
        if found:
            hits[oid] = found
    if not hits:
        return []
    origins = _origins(root, set(hits))
    out = []
    for oid, found in hits.items():
        commit, path = origins.get(oid) or ("", "")
        path = path or names[oid]
        label = f"{commit[:_SHORT] or 'unknown'}:{path}"
        for f in found:
            out.append(
                Finding(label, f.line, f.secret, f.shape, f.encoding, f.live, commit or None)
            )
    return out


def _blobs(root: Path, max_bytes: int) -> dict[str, str]:
    """Each blob reachable from any ref and at most ``max_bytes`` long, with one path it had."""
    listing = _git(
        root,
        "rev-list",
        "--objects",
        "--all",
        f"--filter=combine:object:type=blob+blob:limit={max_bytes}",
        "--filter-provided-objects",
    )
    blobs: dict[str, str] = {}
    for line in listing.splitlines():
        oid, _, path = line.partition(" ")
        if path:
            blobs.setdefault(oid, path)
    return blobs


def _contents(root: Path, oids: list[str]) -> Iterator[tuple[str, bytes]]:
    """Each blob's bytes, read through one ``git cat-file --batch``."""
    process = subprocess.Popen(
        ["git", "-C", str(root), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    # A writer thread: git blocks on a full stdout while we would block on a full stdin.
    writer = threading.Thread(target=_feed, args=(process.stdin, oids), daemon=True)
    writer.start()
    try:
        for _ in oids:
            header = process.stdout.readline().split()
            if len(header) != 3:  # "<oid> missing"
                continue
            data = process.stdout.read(int(header[2]) + 1)[:-1]
            if header[1] == b"blob":
                yield header[0].decode("ascii"), data
    finally:
        process.stdout.close()
        writer.join()
        process.wait()


def _feed(stdin: IO[bytes], oids: list[str]) -> None:
    try:
        for oid in oids:
            stdin.write(oid.encode("ascii") + b"\n")
        stdin.close()
    except BrokenPipeError:  # the reader stopped early
        pass


def _origins(root: Path, wanted: set[str]) -> dict[str, tuple[str, str]]:
    """For each wanted blob, the oldest commit (and path) whose change brought it in."""
    log = _git(
        root,
        "log",
        "--all",
        "--topo-order",
        "--reverse",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        "--format=%x00%H",
    )
    origins: dict[str, tuple[str, str]] = {}
    commit = ""
    for line in log.splitlines():
        if line.startswith("\0"):
            commit = line[1:]
        elif line.startswith(":"):
            meta, _, path = line.partition("\t")
            oid = meta.split()[3]
            if oid in wanted and oid not in origins:
                origins[oid] = (commit, path)
    for oid in wanted - origins.keys():  # brought in by a merge's own resolution
        first = _git(root, "log", "--all", "-m", "--reverse", "--format=%H", f"--find-object={oid}")
        if first.split():
            origins[oid] = (first.split()[0], "")
    return origins
