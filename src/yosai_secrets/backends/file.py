"""Secret files: the one safe reader, and the backend behind ``file:`` references."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from ..errors import SecretFileError, SecretNotFoundError
from .base import Location

__all__ = ["MAX_SECRET_FILE_BYTES", "FileBackend", "check_secret_name", "read_secret_file"]

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


def read_secret_file(path: str | Path, *, what: str = "secret file") -> str:
    """Read a secret file: UTF-8, at most 64 KiB, one trailing newline stripped.

    Raises:
        SecretNotFoundError: the file does not exist.
        SecretFileError: it is a directory, too large, unreadable or not UTF-8 (the message names
            the file, never its content).
    """
    # One open, one fstat, one read: a configuration load reads dozens of these.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise SecretNotFoundError(str(path), [f"{what} {path}"]) from exc
    except OSError as exc:
        raise SecretFileError(
            f"{what} {path} cannot be read ({exc.strerror}); check its permissions"
        ) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SecretFileError(
                f"{what} {path} is a directory, not a file; point it at the file holding the secret"
            )
        if info.st_size > MAX_SECRET_FILE_BYTES:
            raise SecretFileError(
                f"{what} {path} is {info.st_size} bytes, more than the "
                f"{MAX_SECRET_FILE_BYTES}-byte limit for a secret; is this the right file?"
            )
        data = os.read(fd, MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise SecretFileError(
            f"{what} {path} cannot be read ({exc.strerror}); check its permissions"
        ) from None
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SecretFileError(
            f"{what} {path} is larger than the {MAX_SECRET_FILE_BYTES}-byte limit for a secret"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # No `from exc`: the decode error's repr carries the file's bytes.
        raise SecretFileError(
            f"{what} {path} is not UTF-8 text; secret files must hold UTF-8 "
            "(base64-encode binary secrets)"
        ) from None
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


class FileBackend:
    """Reads ``file:PATH`` references: the whole file is the value."""

    name = "file"

    def locate(self, key: str) -> Location:
        """The key is the file's path; files have no fields."""
        return Location(key)

    def fetch(self, path: str) -> str:
        """Read the file at ``path`` (``~`` and environment variables are expanded)."""
        return read_secret_file(Path(os.path.expandvars(path)).expanduser())

    def describe(self, path: str) -> str:
        """Name the file."""
        return f"file {path}"
