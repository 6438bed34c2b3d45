"""Environment variables, ``NAME_FILE`` files, the Docker secrets directory and local files.

A key ``NAME`` is looked up, in order:

1. the environment variable ``NAME`` (an empty value counts as unset; one of blanks only is an
   error);
2. the file named by ``NAME_FILE`` (the convention of official Docker images);
3. the Docker secrets directory ``SECRETS_DIR`` (default ``/run/secrets``): ``name`` in lower case,
   then exactly ``NAME``;
4. in development only (``YOSAI_ENV=development``), the repository's ``secrets/<name>.txt``, the
   files Docker Compose mounts, so a local run needs no Docker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from ..errors import (
    ConfigurationError,
    InvalidReferenceError,
    SecretFileError,
    SecretNotFoundError,
)
from ..references import BACKEND_OF_SCHEME, check_name, shown, unknown_scheme
from .base import Location
from .file import check_secret_name, read_secret_file, shown_path

__all__ = ["DEFAULT_SECRETS_DIR", "EnvBackend"]

DEFAULT_SECRETS_DIR: Final = "/run/secrets"
_DOCKER: Final = "Docker secret "
_LOCAL: Final = "development secret file "
_MAX_MEMO: Final = 1024


class EnvBackend:
    """The default backend: the process environment and secret files.

    Args:
        environ: the environment to read (default: ``os.environ``, read live).
        secrets_dir: the Docker secrets directory (default: ``SECRETS_DIR`` or ``/run/secrets``).
        local_secrets_dir: the development secrets directory (default: ``./secrets``), consulted
            only when ``development`` is true.
        development: whether the development fallback is on (``YOSAI_ENV=development``).
    """

    name = "env"

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        secrets_dir: str | Path | None = None,
        local_secrets_dir: str | Path | None = None,
        development: bool | None = None,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        # Plain strings, not Paths: file names are built on every lookup.
        self._secrets_dir = os.fspath(
            secrets_dir
            if secrets_dir is not None
            else self._environ.get("SECRETS_DIR") or DEFAULT_SECRETS_DIR
        )
        self._local_dir = os.fspath(
            local_secrets_dir
            if local_secrets_dir is not None
            else self._environ.get("YOSAI_LOCAL_SECRETS_DIR") or "secrets"
        )
        # Built once: file names are then a concatenation (names never hold a separator).
        self._secrets_prefix = os.path.join(self._secrets_dir, "")
        self._file_memo: dict[str, tuple[tuple[str, str], ...]] = {}
        # Told (file path, name) before each file read: a projected-volume watcher (projected.py).
        self._notes: list[Callable[[str, str], None]] = []
        self._development = (
            development
            if development is not None
            else self._environ.get("YOSAI_ENV", "").strip().lower() == "development"
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> EnvBackend:
        """Build the backend from ``environ`` (which stays live: later changes are seen)."""
        return cls(environ)

    def locate(self, key: str) -> Location:
        """The key is the variable's name; ``NAME#field`` is not meaningful here.

        Raises:
            InvalidReferenceError: the key starts with a scheme no backend has (``vualt:``), holds
                a control character or is absurdly long.
        """
        name, _, field = key.partition("#")
        scheme = unknown_scheme(name)
        if scheme is not None:
            raise InvalidReferenceError(
                f"secret reference {shown(key)} starts with {scheme + ':'!r}, which is not a "
                f"reference scheme; use one of {', '.join(s + ':' for s in BACKEND_OF_SCHEME)}, "
                "or a plain name such as DB_PASSWORD"
            )
        check_secret_name(name)  # a separator, '..', a NUL: it could leave the directory
        check_name(None, name, key)  # other control characters, absurd lengths
        return Location(name, field or None)

    def fetch(self, path: str) -> str:
        """Return the value of ``path`` from the first place that has it."""
        found = self._find(path)
        if found is None:
            raise SecretNotFoundError(path, self._places(path))
        return found[1]

    def describe(self, path: str) -> str:
        """Say where ``path`` would be read from, e.g. ``env DB_PASSWORD_FILE=/run/secrets/x``."""
        try:
            found = self._find(path, read=False)
        except SecretFileError:
            return "env (unreadable file)"
        return found[0] if found is not None else "env (not found)"

    def watch_files(self, note: Callable[[str, str], None]) -> None:
        """Call ``note(file_path, name)`` just before each secret file is read for ``name``."""
        self._notes.append(note)

    # -- internals ---------------------------------------------------------------------------

    def _files(self, name: str) -> tuple[tuple[str, str], ...]:
        """The Docker secret (and development) files for ``name``: (kind, path), in order.

        A place is described as ``kind + path``, when it is needed. Memoised per name: they
        depend only on the directories, fixed at construction.
        """
        files = self._file_memo.get(name)
        if files is None:
            lower = name.lower()
            files = ((_DOCKER, self._secrets_prefix + lower),)
            if name != lower:
                files += ((_DOCKER, self._secrets_prefix + name),)
            if self._development:
                files += ((_LOCAL, os.path.join(self._local_dir, f"{lower}.txt")),)
            if len(self._file_memo) >= _MAX_MEMO:
                self._file_memo.clear()  # names may come from anywhere: keep the memo bounded
            self._file_memo[name] = files
        return files

    def _places(self, name: str) -> list[str]:
        """Every place ``name`` may be, in order (for a not-found message)."""
        file_var = f"{name}_FILE"
        named = self._environ.get(file_var)
        return [
            f"environment variable {name}",
            f"{file_var}={shown_path(named)}" if named else f"{file_var} (not set)",
            *(kind + path for kind, path in self._files(name)),
        ]

    def _find(self, name: str, *, read: bool = True) -> tuple[str, str] | None:
        check_secret_name(name)
        value = self._environ.get(name)
        if value:
            if not value.strip():
                raise ConfigurationError(
                    f"environment variable {name} holds only blanks (spaces, tabs or line "
                    "breaks); set it to the secret, or unset it"
                )
            return f"env {name}", value
        file_var = f"{name}_FILE"
        named = self._environ.get(file_var)
        if named:
            place = f"{file_var}={shown_path(named)}"
            if not read:
                return place, ""
            for note in self._notes:
                note(named, name)
            try:
                return place, read_secret_file(named, what=f"the file named by {file_var}")
            except SecretNotFoundError:
                raise SecretFileError(
                    f"{file_var} names {shown_path(named)}, which does not exist; fix the path "
                    f"or unset {file_var}"
                ) from None
        for kind, path in self._files(name):
            if not read:
                if os.path.exists(path):
                    return kind + path, ""
                continue
            for note in self._notes:
                note(path, name)
            try:
                value = read_secret_file(path, within=self._within(kind))
            except SecretNotFoundError:
                continue
            return kind + path, value
        return None

    def _within(self, kind: str) -> str:
        return self._secrets_dir if kind == _DOCKER else self._local_dir
