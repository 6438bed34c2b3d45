"""Find where a secret leaked: our own values (as they are and encoded) and credential shapes.

Pattern scanners (detect-secrets, gitleaks) guess from shapes; they cannot know whether a string
is *your* password, nor whether it still works. This scanner is given the values themselves
(:func:`known_values` gathers the current and previous value of each configured secret from every
source), searches files, and optionally a repository's whole history, for each value in every
common encoding (:mod:`.encodings`) and for well-known credential shapes (:mod:`.shapes`). A
finding names the file, the line, the secret (by name) or the shape, the encoding, and whether
the value found is the secret's current one (``live``: rotate now) or a previous one.

No value ever leaves this module: not in a :class:`Finding`, its ``repr``, a log line or an
exception. Values are held as :class:`~yosai_secrets.secret.Secret`.

>>> scan_paths([Path("src")], known_values(os.environ))  # doctest: +SKIP
"""

from __future__ import annotations

import bisect
import logging
import os
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..errors import ConfigurationError
from ..secret import Secret
from .encodings import Label, ValueMatcher
from .shapes import ALLOW_MARKERS, find_shapes

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SKIPPED_DIRS",
    "Finding",
    "SecretValues",
    "find_hits",
    "findings_at",
    "known_values",
    "scan_bytes",
    "scan_paths",
]

_log = logging.getLogger("yosai_secrets.audit.scan")

#: Files larger than this are skipped (``--max-bytes``): generated data and archives, not code.
DEFAULT_MAX_BYTES: Final = 2 * 1024 * 1024
#: Directories never walked into: version control, caches, dependencies. A directory holding a
#: ``pyvenv.cfg`` (a virtualenv) is skipped too, whatever its name.
SKIPPED_DIRS: Final = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
        ".tox",
        ".nox",
        ".eggs",
        ".venv",
        "venv",
    }
)
# A NUL byte in the first block: a binary file (the test git and grep use too).
_BINARY_PROBE_BYTES: Final = 8192


@dataclass(frozen=True, slots=True)
class Finding:
    """One place where a secret, or something shaped like one, was found.

    Attributes:
        path: the file (``<commit>:<path>`` for a file of the git history).
        line: the line number, from 1.
        secret: the configured secret's name when the value is one of ours, else None.
        shape: the credential shape (``private-key``, ``aws-access-key``, ``vault-token``,
            ``fernet-key``, ``jwt``, ``high-entropy-assignment``) when it is not one of ours.
        encoding: how the value was written (``plain``, ``base64``, ``base64url``, ``url``,
            ``hex``, ``json-escaped``); ``plain`` for a shape.
        live: the value found is the secret's current value (always False for a shape: unknown).
        commit: the commit that added the file's content, for a file of the git history.
    """

    path: str
    line: int
    secret: str | None
    shape: str | None
    encoding: str
    live: bool
    commit: str | None = None

    @property
    def what(self) -> str:
        """The secret's name, else the shape's."""
        return self.secret or self.shape or "?"


@dataclass(frozen=True, slots=True)
class SecretValues:
    """The values one secret has now and had before, masked.

    Attributes:
        current: the values some configured source serves now (usually one; two while a rotation
            is open, or when the store and the manifest disagree). Finding one of these is live.
        previous: values it had before (fallbacks, the rotation journal's old values, earlier
            store versions). Finding one is a leak of a retired value.
    """

    current: tuple[Secret, ...] = ()
    previous: tuple[Secret, ...] = ()

    @classmethod
    def of(
        cls, current: str | Iterable[str] | None = None, previous: Iterable[str] = ()
    ) -> SecretValues:
        """Build from plain strings (the one current value, or several)."""
        now = [current] if isinstance(current, str) else list(current or ())
        return cls(tuple(Secret(v) for v in now if v), tuple(Secret(v) for v in previous if v))

    def merged(self, other: SecretValues) -> SecretValues:
        """These values and ``other``'s, each kept once, current before previous."""
        current = tuple(dict.fromkeys((*self.current, *other.current)))
        previous = dict.fromkeys((*self.previous, *other.previous))
        return SecretValues(current, tuple(v for v in previous if v not in current))

    def searchable(self) -> list[tuple[str, bool]]:
        """Each value with whether it is live, for the matcher (revealed: internal use only)."""
        live = [(v.reveal(), True) for v in self.current]
        return live + [(v.reveal(), False) for v in self.previous if v not in self.current]


def known_values(
    environ: Mapping[str, str], *, manifest: Path | None = None
) -> dict[str, SecretValues]:
    """The current and previous values of every configured secret, from every source.

    See :func:`yosai_secrets.audit.known.known_values` (the sources and what each gives).
    """
    from .known import known_values as gather

    return gather(environ, manifest=manifest)


def scan_paths(
    paths: Sequence[Path],
    secrets: Mapping[str, SecretValues],
    *,
    git: bool = False,
    shapes: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    exclude: Iterable[Path] = (),
) -> list[Finding]:
    """Search files, directories and (``git=True``) the whole history of their repositories.

    Args:
        paths: files and directories. A directory is walked, skipping :data:`SKIPPED_DIRS` and
            virtualenvs; a file is scanned whatever its name.
        secrets: each secret's name with its values (:func:`known_values`).
        git: also scan every line added by any commit reachable from any ref (branches, tags,
            the stash) of the repository each path lies in, reporting the commit that added it.
        shapes: also report credential shapes (:mod:`.shapes`).
        max_bytes: files larger than this are skipped (history is read as diffs, whole).
        exclude: files never reported (the sources of the values themselves: the manifest).

    Returns:
        The findings, sorted by path and line. Binary files are skipped.

    Raises:
        ConfigurationError: a path does not exist, or ``git`` is asked outside a repository.
    """
    matcher = ValueMatcher({name: v.searchable() for name, v in secrets.items()})
    skip = {os.path.realpath(p) for p in exclude}
    findings: list[Finding] = []
    for path in paths:
        if not path.exists():
            raise ConfigurationError(f"cannot scan {path}: no such file or directory")
        for file in _files(path):
            if os.path.realpath(file) in skip:
                continue
            data = _read(file, max_bytes)
            if data is not None:
                findings.extend(scan_bytes(data, str(file), matcher, shapes=shapes))
    if git:
        from .history import scan_history

        for root in dict.fromkeys(_repository_root(p) for p in paths):
            findings.extend(scan_history(root, matcher, shapes=shapes))
    return sorted(set(findings), key=lambda f: (f.path, f.line, f.what, f.encoding))


#: What :func:`find_hits` found at an offset: a configured value's labels, or a shape's name.
Hit = tuple[int, "tuple[Label, ...] | str"]


def scan_bytes(
    data: bytes,
    path: str,
    matcher: ValueMatcher,
    *,
    shapes: bool = True,
    commit: str | None = None,
) -> list[Finding]:
    """The findings in one file's bytes (``path`` is only a label). Binary data gives none."""
    if b"\0" in data[:_BINARY_PROBE_BYTES]:
        return []
    lines = _LineIndex(data)
    found: list[Finding] = []
    for start, what in find_hits(data, matcher, shapes=shapes):
        found.extend(findings_at(path, lines.number(start), what, commit))
    return found


def find_hits(data: bytes, matcher: ValueMatcher, *, shapes: bool = True) -> list[Hit]:
    """Where values and shapes start in ``data``, one hit per place, most telling first.

    A value of ours says more than its shape, and a Vault token more than the generic assignment
    overlapping it (shapes come most specific first), so an overlapped shape is dropped. A shape
    on a line with an allow marker is dropped too.
    """
    hits: list[Hit] = []
    spans: list[tuple[int, int]] = []
    for start, end, labels in matcher.find(data):
        spans.append((start, end))
        hits.append((start, labels))
    if shapes:
        for start, end, shape in find_shapes(data):
            if any(s < end and start < e for s, e in spans) or _allowed(data, start):
                continue
            spans.append((start, end))
            hits.append((start, shape))
    return hits


def findings_at(
    path: str, line: int, what: tuple[Label, ...] | str, commit: str | None = None
) -> list[Finding]:
    """The findings of one hit: one per secret name whose value it is, or the shape."""
    if isinstance(what, str):
        return [Finding(path, line, None, what, "plain", False, commit)]
    return [Finding(path, line, x.name, None, x.encoding, x.live, commit) for x in what]


def _allowed(data: bytes, offset: int) -> bool:
    """Whether the line holding ``offset`` carries an allow marker."""
    begin = data.rfind(b"\n", 0, offset) + 1
    end = data.find(b"\n", offset)
    line = data[begin : end if end != -1 else len(data)]
    return any(marker in line for marker in ALLOW_MARKERS)


class _LineIndex:
    """Line numbers of byte offsets, computed only when something is found."""

    __slots__ = ("_data", "_starts")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._starts: list[int] | None = None

    def number(self, offset: int) -> int:
        if self._starts is None:
            starts = [0]
            at = self._data.find(b"\n")
            while at != -1:
                starts.append(at + 1)
                at = self._data.find(b"\n", at + 1)
            self._starts = starts
        return bisect.bisect_right(self._starts, offset)


def _files(path: Path) -> Iterator[Path]:
    """``path`` itself if a file, else every file under it, skipping what is never scanned."""
    if not path.is_dir():
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in SKIPPED_DIRS and not os.path.exists(os.path.join(root, d, "pyvenv.cfg"))
        )
        for name in sorted(files):
            full = os.path.join(root, name)
            if not os.path.islink(full):
                yield Path(full)


def _read(file: Path, max_bytes: int) -> bytes | None:
    """The file's bytes; None (logged by name) when it is too large, unreadable or not regular."""
    try:
        info = os.stat(file)
        if not stat.S_ISREG(info.st_mode):
            return None  # a FIFO or a device would block or never end
        if info.st_size > max_bytes:
            _log.info("skipped %s: %d bytes, over the %d-byte limit", file, info.st_size, max_bytes)
            return None
        with open(file, "rb") as handle:
            return handle.read(max_bytes + 1)[:max_bytes]
    except OSError as exc:
        _log.warning("skipped %s: %s", file, exc.strerror or type(exc).__name__)
        return None


def _repository_root(path: Path) -> Path:
    from .history import repository_root

    return repository_root(path)
