"""The bad-input corpus: hostile and careless input, one row each, run by one parametrised test.

A row says what to feed the library (``act``, after an untimed ``setup``) and what must come out:
the error type (one of ours from ``yosai_secrets.errors``) or, for the API, the HTTP status. The
test (``test_corpus.py``) then checks the same things for every row:

- the error is the expected one of ours, and its message names the key, reference, variable or
  file (``Row.named`` and whatever the row adds with ``Ctx.name``; every error row names one);
- the row's canary, planted in the input, is nowhere a user or an error reporter could see it:
  not in the message, ``repr``, the formatted traceback with its whole ``__cause__`` and
  ``__context__`` chain (and every attribute of each exception in it), nor in any log line of any
  logger at DEBUG; for an API row, not in the response's body or headers either;
- it returns within its deadline (generous, for a loaded CI machine);
- nothing is half-written: the row's directory holds exactly what the setup left there, and no
  ``*.yosai-tmp`` anywhere under it.

Rows live in ``rows_*.py``, one module per area (references; Vault from a real OpenBao, from the
stand-in of ``standin.py``, and its settings; AWS from moto, and its settings; Fernet; YAML; secret
files; atomic writes; the environment; JWTs). Rows needing a server started as a process (OpenBao,
moto) are marked ``integration``; the stand-ins run in-process. A row that fails because of code
this corpus does not fix carries ``xfail``: the file at fault and what is wrong with it (a strict
xfail, so that the fix is noticed).
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest

__all__ = ["ACCEPTED", "Ctx", "Response", "Row", "chain_text", "closed_port"]

#: A row's ``expect`` when the input must be accepted (a BOM stripped, a 0644 mount read): the act
#: returns normally, and nothing it planted may show up in a log line either.
ACCEPTED: Final = "accepted"


@dataclass
class Response:
    """What an API row returns: the status, and every text a caller receives."""

    status: int
    text: str


@dataclass
class Ctx:
    """What a row works with: its canary, a private directory, an environment, the servers.

    ``environ`` starts empty (no variable of the test process leaks in) and is what a row hands
    to the managers it builds; ``monkeypatch`` sets ``os.environ`` for code that reads it itself.
    """

    canary: str
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    servers: dict[str, Any]
    environ: dict[str, str] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    planted: list[str] = field(default_factory=list)
    closers: list[Callable[[], object]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    def name(self, *texts: str) -> None:
        """Require each of ``texts`` in the error's message."""
        self.names.extend(texts)

    def plant(self, *texts: str) -> None:
        """Check each of ``texts`` like the canary (a token, a key): nowhere a caller sees it."""
        self.planted.extend(t for t in texts if t)

    def server(self, fixture: str) -> Any:
        """The session server behind ``fixture`` (declared in the row's ``needs``)."""
        return self.servers[fixture]

    def on_close(self, closer: Callable[[], object]) -> None:
        """Call ``closer`` after the row, whatever happened."""
        self.closers.append(closer)

    def close(self) -> None:
        for closer in reversed(self.closers):
            with contextlib.suppress(Exception):
                closer()


@dataclass(frozen=True)
class Row:
    """One hostile input and what the library must do with it.

    Attributes:
        id: the test id (``area-what``).
        act: feeds the input to the library (timed); raises, or returns a :class:`Response`.
        expect: the error type of ours that must be raised, the HTTP status to answer, or
            :data:`ACCEPTED`.
        named: texts the message must contain (the key, reference, variable or file).
        setup: prepares the input (untimed: files, server state, the environment).
        deadline_seconds: the most the act may take.
        needs: fixtures to start before the row (session servers).
        xfail: ``"<file>: <what is wrong>"`` when code outside this corpus's fixes is at fault.
        why: why the row exists when the id does not say (a stand-in, a limit of the emulator).
    """

    id: str
    act: Callable[[Ctx], object]
    expect: type[BaseException] | int | str
    named: tuple[str, ...] = ()
    setup: Callable[[Ctx], None] | None = None
    deadline_seconds: float = 5.0
    needs: tuple[str, ...] = ()
    xfail: str | None = None
    why: str = ""


def chain_text(error: BaseException) -> str:
    """Everything reachable from ``error``: message, repr, traceback, each link's attributes."""
    seen: list[BaseException] = []
    stack: list[BaseException | None] = [error]
    while stack:
        current = stack.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        stack += [current.__cause__, current.__context__]
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    for link in seen:
        parts.append(repr(link.args))
        with contextlib.suppress(TypeError):
            parts.append(repr(vars(link)))
    return "\n".join(parts)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree(root: Path) -> dict[str, int]:
    """Every entry under ``root``: relative path -> size (``-1`` for what is not a regular file)."""
    found: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            try:
                info = path.lstat()
            except OSError:
                continue
            import stat

            size = info.st_size if stat.S_ISREG(info.st_mode) else -1
            found[str(path.relative_to(root))] = size
    return found


def walk_rows(modules: list[Any]) -> Iterator[Row]:
    """Every row of the row modules, in order."""
    for module in modules:
        yield from module.ROWS
