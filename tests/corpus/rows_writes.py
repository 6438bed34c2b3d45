"""Atomic writes of a secret file (what rotation, the scan report and dev secrets use).

The target is a directory, lies under a file, is a link to a directory, has a NUL in its name;
the text cannot be encoded. The canary is the text written: nothing of it may be left behind
(no ``*.yosai-tmp``, no partial file), and the error names the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.corpus import Ctx, Row
from yosai_secrets.fileio import FileWriteError


def _write(target: Callable[[Ctx], Path], text: Callable[[Ctx], str]) -> Callable[[Ctx], None]:
    """Write ``text`` atomically at ``target`` (what rotation, scan and dev secrets use)."""

    def act(ctx: Ctx) -> None:
        from yosai_secrets.fileio import atomic_write_text

        path = target(ctx)
        ctx.name(path.name.replace("\0", "\\0"))  # a NUL is shown escaped, as printed
        atomic_write_text(path, text(ctx), what="the corpus file")

    return act


def _write_row(
    id: str,
    target: Callable[[Ctx], Path],
    setup: Callable[[Ctx], None] | None,
    text: Callable[[Ctx], str] | None = None,
    xfail: str | None = None,
) -> Row:
    return Row(
        id=f"files-write-{id}",
        act=_write(target, text or (lambda ctx: ctx.canary + "\n")),
        expect=FileWriteError,
        setup=setup,
        xfail=xfail,
    )


def _existing(ctx: Ctx) -> None:
    (ctx.tmp / "target").write_text("old value\n", encoding="utf-8")
    (ctx.tmp / "target").chmod(0o600)


_FILEIO = "fileio.py: "
ROWS = [
    _write_row(
        "over-a-directory", lambda ctx: ctx.tmp / "target", lambda ctx: (ctx.tmp / "target").mkdir()
    ),
    _write_row("under-a-file", lambda ctx: ctx.tmp / "target" / "inner", _existing),
    _write_row(
        "link-to-a-directory",
        lambda ctx: ctx.tmp / "link",
        lambda ctx: ((ctx.tmp / "dir").mkdir(), (ctx.tmp / "link").symlink_to("dir"))[0],
    ),
    _write_row(
        "nul-in-path",
        lambda ctx: ctx.tmp / "tar\x00get",
        _existing,
    ),
    _write_row(
        "text-not-encodable",
        lambda ctx: ctx.tmp / "target",
        _existing,
        text=lambda ctx: ctx.canary + "\ud800",
    ),
]
