"""Secret files: the one safe reader, and the backend behind ``file:`` references."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final

from ..errors import InvalidReferenceError, SecretFileError, SecretNotFoundError
from ..references import check_name
from .base import Location

__all__ = [
    "MAX_SECRET_FILE_BYTES",
    "FileBackend",
    "check_secret_name",
    "read_secret_file",
    "shown_path",
]

MAX_SECRET_FILE_BYTES: Final = 64 * 1024


def check_secret_name(name: str) -> None:
    """Refuse a secret name that could leave the directory it is looked up in.

    Raises:
        SecretFileError: the name contains a path separator, ``..`` or a NUL byte.
    """
    if "/" in name or "\\" in name or ".." in name or "\x00" in name or name.startswith("~"):
        raise SecretFileError(
            f"secret name {name!r} cannot be used as a file name: it contains a path separator, "
            "'..' or another unsafe character; use a plain name such as DB_PASSWORD"
        )


def shown_path(named: str) -> str:
    """``named`` when it looks like a path; otherwise not shown (it may be the secret itself).

    A variable meant to name a file (``DB_PASSWORD_FILE``, ``VAULT_CLIENT_KEY``) sometimes holds
    the secret instead: a value that is not an absolute path in an existing directory is never
    repeated in a message.
    """
    if named.isprintable() and os.path.isabs(named) and os.path.isdir(os.path.dirname(named)):
        return named
    return "a file (the value is not shown: it may be the secret itself, set by mistake)"


def read_secret_file(
    path: str | Path, *, what: str = "secret file", within: str | None = None
) -> str:
    """Read a secret file: UTF-8, at most 64 KiB, one trailing newline (and a BOM) stripped.

    Only a regular file is read: a FIFO, a device (``/dev/zero``) or a socket is refused without
    blocking; so is a file every user may write (anyone could replace the secret). A group- or
    world-readable file is read: Docker mounts secrets 0444 and Kubernetes 0644. With ``within``
    (a directory), a symbolic link is followed only when its target stays inside that directory
    (as Kubernetes' ``..data`` links do).

    Raises:
        SecretNotFoundError: the file does not exist.
        SecretFileError: it is not a regular file, a link leaving ``within``, world-writable,
            empty, too large, unreadable, not UTF-8 or holds a NUL (the message names the file,
            never its content).
    """
    text = _decode(_read_bounded(path, what, within), path, what)
    if "\x00" in text:
        raise SecretFileError(
            f"{what} {path} holds a NUL byte; secret files hold text (base64-encode binary secrets)"
        )
    if text.startswith("\ufeff"):
        text = text[1:]  # a UTF-8 byte order mark is not part of the secret
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text.strip():
        raise SecretFileError(
            f"{what} {path} is empty (or holds only blanks); write the secret into it, or "
            "remove the file"
        )
    return text


# O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused after fstat).
_FLAGS: Final = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK


def _open(path: str | Path, what: str, within: str | None) -> int:
    """Open ``path`` for reading; with ``within``, a link must stay inside that directory."""
    try:
        if within is None:
            return os.open(path, _FLAGS)
        try:
            return os.open(path, _FLAGS | os.O_NOFOLLOW)  # the common case: a plain file
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
        try:
            return _open_within(path, what, within)
        except FileNotFoundError:
            # The kubelet may have swapped ..data and removed the old version between resolving
            # and opening: resolve once more (a second swap within microseconds is not expected).
            return _open_within(path, what, within)
    except FileNotFoundError as exc:
        raise SecretNotFoundError(str(path), [f"{what} {path}"]) from exc
    except ValueError:  # a NUL byte in the path
        raise SecretFileError(f"{what} path holds a NUL byte; it cannot name a file") from None
    except OSError as exc:
        raise _unreadable(path, what, exc) from None


def _open_within(path: str | Path, what: str, within: str) -> int:
    """Resolve the links of ``path`` and open the file, which must lie inside ``within``."""
    real, root = os.path.realpath(path), os.path.realpath(within)
    if os.path.commonpath([real, root]) != root:
        raise SecretFileError(
            f"{what} {path} is a symbolic link to a file outside {within}; secret files "
            "must stay in their directory"
        )
    return os.open(real, _FLAGS)


def _read_bounded(path: str | Path, what: str, within: str | None = None) -> bytes:
    """The file's bytes, refused when it is not a regular file or larger than the limit."""
    # One open, one fstat, one read: a configuration load reads dozens of these.
    fd = _open(path, what, within)
    try:
        _check_kind_and_size(os.fstat(fd), path, what)
        data = os.read(fd, MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise _unreadable(path, what, exc) from None
    finally:
        os.close(fd)
    # fstat's size can be wrong: the file grew since, or it is a pipe or a /proc file (size 0).
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SecretFileError(
            f"{what} {path} is larger than the {MAX_SECRET_FILE_BYTES}-byte limit for a secret"
        )
    return data


def _check_kind_and_size(info: os.stat_result, path: str | Path, what: str) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise SecretFileError(
            f"{what} {path} is a directory, not a file; point it at the file holding the secret"
        )
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
        raise SecretFileError(
            f"{what} {path} is {kind}, not a regular file; point it at the file holding the secret"
        )
    if info.st_mode & stat.S_IWOTH:
        raise SecretFileError(
            f"{what} {path} is writable by every user of this machine, who could replace the "
            "secret; remove that permission (chmod o-w), e.g. mode 0600 or 0440"
        )
    if info.st_size > MAX_SECRET_FILE_BYTES:
        raise SecretFileError(
            f"{what} {path} is {info.st_size} bytes, more than the "
            f"{MAX_SECRET_FILE_BYTES}-byte limit for a secret; is this the right file?"
        )


def _unreadable(path: str | Path, what: str, exc: OSError) -> SecretFileError:
    return SecretFileError(f"{what} {path} cannot be read ({exc.strerror}); check its permissions")


def _decode(data: bytes, path: str | Path, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # No `from exc`: the decode error's repr carries the file's bytes.
        raise SecretFileError(
            f"{what} {path} is not UTF-8 text; secret files must hold UTF-8 "
            "(base64-encode binary secrets)"
        ) from None


class FileBackend:
    """Reads ``file:PATH`` references: the whole file is the value."""

    name = "file"

    def __init__(self) -> None:
        # Told (file path, reference path) before each read: a projected-volume watcher.
        self._notes: list[Callable[[str, str], None]] = []

    def watch_files(self, note: Callable[[str, str], None]) -> None:
        """Call ``note(file_path, path)`` just before the file of ``file:path`` is read."""
        self._notes.append(note)

    def locate(self, key: str) -> Location:
        """The key is the file's path; files have no fields.

        Raises:
            InvalidReferenceError: the path has a ``..`` segment or a control character.
        """
        check_name("file", key, f"file:{key}")
        return Location(key)

    def fetch(self, path: str) -> str:
        """Read the file at ``path`` (``~`` and environment variables are expanded).

        Messages name the path as written: an expanded variable may be a secret
        (``file:/run/$DB_PASSWORD`` must not repeat the password).
        """
        expanded = os.path.expanduser(os.path.expandvars(path))
        for note in self._notes:
            note(expanded, path)
        if expanded == path:
            return read_secret_file(path)
        try:
            check_name("file", expanded, f"file:{path} (expanded)")
            return read_secret_file(expanded)
        except SecretNotFoundError:
            raise SecretNotFoundError(path, [f"file {path} (variables expanded)"]) from None
        except (SecretFileError, InvalidReferenceError) as exc:
            raise type(exc)(str(exc).replace(expanded, f"{path} (variables expanded)")) from None

    def describe(self, path: str) -> str:
        """Name the file."""
        return f"file {path}"
