"""Secret files: traversal, odd file types, sizes, encodings, blanks, links, permissions.

Reached the three ways a file is named: a Docker secret in ``SECRETS_DIR`` (the key's name), a
``NAME_FILE`` variable, and a ``file:`` reference. The canary is the file's content (or the
variable's, where the variable holds the secret by mistake). The suite runs as root, who reads
any file whatever its mode: a file made unreadable (mode 000) cannot be a row here. A group- or
world-readable file is read (Docker mounts secrets 0444, Kubernetes 0644), a world-writable one
is refused: anyone on the machine could replace the secret.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from tests.corpus import ACCEPTED, Ctx, Row
from tests.corpus.helpers import get
from yosai_secrets.errors import InvalidReferenceError, SecretFileError, SecretNotFoundError


def _dir(ctx: Ctx) -> Path:
    return ctx.tmp / "secrets"


def _secrets_dir(make: Callable[[Path, Ctx], None]) -> Callable[[Ctx], None]:
    """A secrets directory in which ``make`` creates ``db_password``; SECRETS_DIR points there."""

    def setup(ctx: Ctx) -> None:
        directory = _dir(ctx)
        directory.mkdir()
        make(directory / "db_password", ctx)
        ctx.environ["SECRETS_DIR"] = str(directory)

    return setup


def _content(
    data: bytes | Callable[[Ctx], bytes], mode: int = 0o600
) -> Callable[[Path, Ctx], None]:
    def make(path: Path, ctx: Ctx) -> None:
        path.write_bytes(
            data(ctx) if callable(data) else data.replace(b"CANARY", ctx.canary.encode())
        )
        path.chmod(mode)

    return make


def _outside(ctx: Ctx) -> Path:
    """A file outside the secrets directory, holding the canary."""
    target = ctx.tmp / "outside"
    target.write_text(ctx.canary, encoding="utf-8")
    return target


def _link_out(path: Path, ctx: Ctx) -> None:
    path.symlink_to(_outside(ctx))


def _link_chain_out(path: Path, ctx: Ctx) -> None:
    hop = path.parent / "hop"
    hop.symlink_to(_outside(ctx))
    path.symlink_to("hop")


def _link_relative_out(path: Path, ctx: Ctx) -> None:
    _outside(ctx)
    path.symlink_to("../outside")


def _link_dev_zero(path: Path, ctx: Ctx) -> None:
    path.symlink_to("/dev/zero")


def _fifo(path: Path, ctx: Ctx) -> None:
    os.mkfifo(path)


def _directory(path: Path, ctx: Ctx) -> None:
    path.mkdir()
    (path / "inner").write_text(ctx.canary, encoding="utf-8")


def _unix_socket(path: Path, ctx: Ctx) -> None:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    ctx.on_close(listener.close)


def _docker(key: str = "DB_PASSWORD") -> Callable[[Ctx], str]:
    def act(ctx: Ctx) -> str:
        ctx.name(str(_dir(ctx)))
        return get(ctx, key, "env")

    return act


def _docker_row(
    id: str, make: Callable[[Path, Ctx], None], expect: object = SecretFileError, **kw: object
) -> Row:
    return Row(
        id=f"files-docker-{id}", act=_docker(), expect=expect, setup=_secrets_dir(make), **kw
    )  # type: ignore[arg-type]


def _variable(value: Callable[[Ctx], str]) -> Callable[[Ctx], None]:
    """DB_PASSWORD_FILE set to what ``value`` gives."""

    def setup(ctx: Ctx) -> None:
        ctx.environ["DB_PASSWORD_FILE"] = value(ctx)
        ctx.environ["SECRETS_DIR"] = str(_dir(ctx))

    return setup


def _via_variable(ctx: Ctx) -> str:
    ctx.name("DB_PASSWORD_FILE")
    return get(ctx, "DB_PASSWORD", "env")


def _made(make: Callable[[Path, Ctx], None], name: str = "made") -> Callable[[Ctx], str]:
    def value(ctx: Ctx) -> str:
        path = ctx.tmp / name
        make(path, ctx)
        return str(path)

    return value


def _ref(text: Callable[[Ctx], str]) -> Callable[[Ctx], str]:
    def act(ctx: Ctx) -> str:
        return get(ctx, "file:" + text(ctx), "env")

    return act


def _ten_mebibytes(path: Path, ctx: Ctx) -> None:
    with path.open("wb") as handle:
        handle.write(ctx.canary.encode() * 8)
        handle.truncate(10 << 20)


ROWS = [
    # -- names that would leave the directory -----------------------------------------------------
    Row(
        id="files-name-traversal",
        act=lambda ctx: get(ctx, "../../etc/passwd", "env"),
        expect=SecretFileError,
        named=("../../etc/passwd",),
    ),
    Row(
        id="files-name-absolute",
        act=lambda ctx: get(ctx, "/etc/hostname", "env"),
        expect=SecretFileError,
        named=("/etc/hostname",),
    ),
    Row(
        id="files-name-backslash",
        act=lambda ctx: get(ctx, "..\\..\\etc\\passwd", "env"),
        expect=SecretFileError,
        named=("etc",),
    ),
    Row(
        id="files-name-home",
        act=lambda ctx: get(ctx, "~root", "env"),
        expect=SecretFileError,
        named=("~root",),
    ),
    Row(
        id="files-name-nul",
        act=lambda ctx: get(ctx, "DB\x00PASSWORD", "env"),
        expect=SecretFileError,
        named=("PASSWORD",),
    ),
    Row(
        id="files-ref-traversal",
        act=_ref(lambda ctx: f"{ctx.tmp}/secrets/../outside"),
        expect=InvalidReferenceError,
        named=("..",),
        setup=lambda ctx: (_outside(ctx), None)[1],
    ),
    Row(
        id="files-ref-nul",
        act=_ref(lambda ctx: f"{ctx.tmp}/outside\x00.txt"),
        expect=InvalidReferenceError,
        named=("outside",),
    ),
    Row(
        id="files-ref-variable-holding-a-secret",
        act=_ref(lambda ctx: f"{ctx.tmp}/$CORPUS_DB_PASSWORD"),
        expect=SecretNotFoundError,
        named=("$CORPUS_DB_PASSWORD",),
        setup=lambda ctx: ctx.monkeypatch.setenv("CORPUS_DB_PASSWORD", ctx.canary),
        why="file: expands variables (from the process environment); one may be a secret",
    ),
    Row(
        id="files-ref-variable-holding-dotdot",
        act=_ref(lambda ctx: f"{ctx.tmp}/$CORPUS_DIR/outside"),
        expect=InvalidReferenceError,
        named=("$CORPUS_DIR",),
        setup=lambda ctx: ctx.monkeypatch.setenv("CORPUS_DIR", f"secrets/../../{ctx.canary}"),
    ),
    Row(
        id="files-ref-variable-naming-a-directory",
        act=_ref(lambda ctx: "$CORPUS_DIR"),
        expect=SecretFileError,
        named=("$CORPUS_DIR",),
        setup=lambda ctx: (
            (ctx.tmp / ctx.canary).mkdir(),
            ctx.monkeypatch.setenv("CORPUS_DIR", str(ctx.tmp / ctx.canary)),
        )[0],
    ),
    # -- what is not a regular file ---------------------------------------------------------------
    _docker_row(
        "fifo", _fifo, deadline_seconds=2.0, why="issue 12 class 8: open() used to block forever"
    ),
    _docker_row("directory", _directory),
    _docker_row("unix-socket", _unix_socket),
    _docker_row("link-to-dev-zero", _link_dev_zero, deadline_seconds=2.0),
    Row(
        id="files-variable-fifo",
        act=_via_variable,
        expect=SecretFileError,
        setup=_variable(_made(_fifo)),
        deadline_seconds=2.0,
    ),
    Row(
        id="files-variable-dev-zero",
        act=_via_variable,
        expect=SecretFileError,
        setup=_variable(lambda ctx: "/dev/zero"),
        deadline_seconds=2.0,
    ),
    Row(
        id="files-variable-directory",
        act=_via_variable,
        expect=SecretFileError,
        setup=_variable(lambda ctx: str(ctx.tmp)),
    ),
    Row(
        id="files-ref-dev-zero",
        act=_ref(lambda ctx: "/dev/zero"),
        expect=SecretFileError,
        named=("/dev/zero",),
        deadline_seconds=2.0,
    ),
    Row(
        id="files-ref-dev-urandom",
        act=_ref(lambda ctx: "/dev/urandom"),
        expect=SecretFileError,
        named=("/dev/urandom",),
        deadline_seconds=2.0,
    ),
    Row(
        id="files-ref-fifo",
        act=_ref(lambda ctx: str(ctx.tmp / "made")),
        expect=SecretFileError,
        named=("made", "FIFO"),
        setup=lambda ctx: _fifo(ctx.tmp / "made", ctx),
        deadline_seconds=2.0,
    ),
    # -- sizes and encodings ----------------------------------------------------------------------
    _docker_row("ten-mebibytes", _ten_mebibytes, named=("limit",)),
    _docker_row(
        "just-over-the-limit", _content(lambda ctx: ctx.canary.encode() + b"x" * (64 * 1024))
    ),
    _docker_row("not-utf8", _content(b"\xff\xfe\xfaCANARY\x80"), named=("UTF-8",)),
    _docker_row("latin1", _content(b"caf\xe9-CANARY"), named=("UTF-8",)),
    _docker_row("empty", _content(b""), named=("empty",)),
    _docker_row("whitespace-only", _content(b"  \t \n"), named=("empty",)),
    _docker_row("newline-only", _content(b"\n"), named=("empty",)),
    _docker_row("crlf-only", _content(b"\r\n"), named=("empty",)),
    _docker_row("bom-only", _content(b"\xef\xbb\xbf\n"), named=("empty",)),
    _docker_row("nul-inside", _content(b"CANARY\x00tail"), named=("NUL",)),
    Row(
        id="files-docker-bom-stripped",
        act=lambda ctx: _check(get(ctx, "DB_PASSWORD", "env") == ctx.canary),
        expect=ACCEPTED,
        setup=_secrets_dir(_content(b"\xef\xbb\xbfCANARY\n")),
    ),
    # -- links leaving the directory --------------------------------------------------------------
    _docker_row("link-outside", _link_out, named=("outside",)),
    _docker_row("link-chain-outside", _link_chain_out),
    _docker_row("link-relative-outside", _link_relative_out),
    # -- permissions (as root) --------------------------------------------------------------------
    Row(
        id="files-docker-group-readable",
        act=lambda ctx: _check(get(ctx, "DB_PASSWORD", "env") == ctx.canary),
        expect=ACCEPTED,
        setup=_secrets_dir(_content(b"CANARY", 0o640)),
    ),
    Row(
        id="files-docker-world-readable",
        act=lambda ctx: _check(get(ctx, "DB_PASSWORD", "env") == ctx.canary),
        expect=ACCEPTED,
        setup=_secrets_dir(_content(b"CANARY", 0o444)),
    ),
    _docker_row("world-writable", _content(b"CANARY", 0o666), named=("writable",)),
    _docker_row(
        "group-writable",
        _content(b"CANARY", 0o660),
        expect=ACCEPTED,
        why="group-writable mounts (fsGroup) are common in Kubernetes; world-writable is refused",
    ),
    # -- a variable that holds the secret instead of a path ---------------------------------------
    Row(
        id="files-variable-holds-the-secret",
        act=_via_variable,
        expect=SecretFileError,
        setup=_variable(lambda ctx: ctx.canary),
        why="issue 12 class 12",
    ),
    Row(
        id="files-variable-holds-a-pem",
        act=_via_variable,
        expect=SecretFileError,
        setup=_variable(
            lambda ctx: f"-----BEGIN PRIVATE KEY-----\n{ctx.canary}\n-----END PRIVATE KEY-----"
        ),
    ),
    Row(
        id="files-variable-missing-path",
        act=_via_variable,
        expect=SecretFileError,
        named=("does not exist",),
        setup=_variable(lambda ctx: str(ctx.tmp / "absent")),
    ),
    Row(
        id="files-variable-nul",
        act=_via_variable,
        expect=SecretFileError,
        setup=_variable(lambda ctx: f"{ctx.tmp}/x\x00{ctx.canary}"),
    ),
    Row(
        id="files-missing-everywhere",
        act=_docker(),
        expect=SecretNotFoundError,
        named=("DB_PASSWORD_FILE",),
        setup=lambda ctx: (_dir(ctx).mkdir(), ctx.environ.update(SECRETS_DIR=str(_dir(ctx))))[1],
    ),
]


def _check(condition: bool) -> None:
    assert condition
