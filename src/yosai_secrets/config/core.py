"""ConfigManager and SecureConfigManager: the application's configuration as a read-only mapping.

The managers load with :func:`~yosai_secrets.config.loading.load_configuration` and raise one
:class:`~yosai_secrets.errors.ValidationError` listing every problem it reports; a secret is
masked in every repr and in :meth:`ConfigManager.as_dict` unless revealed.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Final

from ..edge import public_edge
from ..errors import ConfigurationError, ValidationError
from ..manager import SecretManager
from ..secret import MASK
from .keys import SECRET_SETTINGS, dotted, looks_secret_key
from .loading import LoadedConfiguration, load_configuration
from .resolve import KeyPath, get_path

__all__ = ["ConfigManager", "SecureConfigManager"]

_log = logging.getLogger("yosai_secrets.config")
_NO_DEFAULT: Final[Any] = object()


def _is_masked(path: KeyPath, value: Any, masked: set[KeyPath]) -> bool:
    if path in masked:
        return True
    name = path[-1]
    return isinstance(name, str) and looks_secret_key(name) and isinstance(value, str | bytes)


def _masked_copy(data: Any, masked: set[KeyPath], prefix: KeyPath = ()) -> Any:
    if isinstance(data, Mapping):
        return {
            k: MASK
            if _is_masked((*prefix, k), v, masked)
            else _masked_copy(v, masked, (*prefix, k))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [
            MASK if (*prefix, i) in masked else _masked_copy(v, masked, (*prefix, i))
            for i, v in enumerate(data)
        ]
    return data


class Section(Mapping[str, Any]):
    """A read-only view of one configuration section; its repr masks every secret."""

    __slots__ = ("_data", "_masked", "_prefix")

    def __init__(self, data: Mapping[str, Any], masked: set[KeyPath], prefix: KeyPath) -> None:
        self._data = data
        self._masked = masked
        self._prefix = prefix

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        if isinstance(value, Mapping):
            return Section(value, self._masked, (*self._prefix, key))
        return copy.deepcopy(value) if isinstance(value, list) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        shown = _masked_copy(self._data, self._masked, self._prefix)
        return f"Section({dotted(tuple(map(str, self._prefix)))!r}, {shown!r})"


class ConfigManager(Mapping[str, Any]):
    """The application's configuration: layered YAML plus the six secrets, validated.

    Files: ``base.yaml`` (optional) and ``<env>.yaml`` from ``path``, else ``YOSAI_CONFIG_DIR``,
    else ``./config``; or the one file ``path`` (or ``YOSAI_CONFIG_FILE``). Each secret
    (``security.secret_key`` = ``SECRET_KEY``, ``database.password`` = ``DB_PASSWORD``,
    ``auth0.*`` = ``AUTH0_*``) comes from the environment variable of its name if set, else the
    file (a reference or an encrypted value is resolved), else the secret backend
    (``SECRET_BACKEND``). Other references in the files are left as text here:
    :class:`SecureConfigManager` resolves them all.

    Args:
        path: a configuration directory or file.
        env: the environment (default ``YOSAI_ENV``, else ``production``).
        validate: check the environment's rules on construction and reload.
        environ: the environment variables (default ``os.environ``).
        manager: the :class:`SecretManager` to read secrets with (default: a new one).

    Raises:
        ValidationError: every problem found (unreadable secrets, missing or weak ones).
        ConfigurationError: an unknown environment or backend, or a file that is not safe YAML.
    """

    _resolve_references: ClassVar[bool] = False

    @public_edge
    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        env: str | None = None,
        validate: bool = True,
        environ: Mapping[str, str] | None = None,
        manager: SecretManager | None = None,
    ) -> None:
        self._path = path
        self._env = env
        self._validate = validate
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._manager = manager
        self._lock = threading.Lock()
        self._state = self._load()

    def _load(self, manager: SecretManager | None = None) -> LoadedConfiguration:
        state = load_configuration(
            self._path,
            env=self._env,
            environ=self._environ,
            manager=manager or self._manager,
            resolve_references=self._resolve_references,
            validate=self._validate,
        )
        if state.problems:
            files = ", ".join(f.name for f in state.files) or "no configuration file"
            raise ValidationError(
                state.problems,
                heading=f"configuration for {state.environment} ({files}) is invalid",
            )
        _log.info(
            "configuration for %s loaded from %s",
            state.environment,
            ", ".join(f.name for f in state.files) or "no file",
        )
        return state

    @property
    def environment(self) -> str:
        """The environment this configuration is for (``production`` unless told otherwise)."""
        return self._state.environment

    @property
    def files(self) -> list[Path]:
        """The files loaded, lowest precedence first."""
        return list(self._state.files)

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value at the dotted ``key`` (``"database.password"``), or ``default``."""
        try:
            value = get_path(self._state.data, tuple(key.split(".")))
        except KeyError:
            return default
        if isinstance(value, Mapping):
            return Section(value, self._state.masked, tuple(key.split(".")))
        return copy.deepcopy(value) if isinstance(value, list) else value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _NO_DEFAULT)
        if value is _NO_DEFAULT:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._state.data)

    def __len__(self) -> int:
        return len(self._state.data)

    def as_dict(self, reveal: bool = False) -> dict[str, Any]:
        """Return the whole configuration as plain data, every secret masked unless ``reveal``."""
        if reveal:
            return copy.deepcopy(self._state.data)
        masked: dict[str, Any] = _masked_copy(self._state.data, self._state.masked)
        return masked

    def sources(self) -> dict[str, str]:
        """Say where each of the six secrets came from (``env SECRET_KEY``, a Vault path, ...)."""
        found = self._state.secrets
        return {name: found[name].source for name in SECRET_SETTINGS if name in found}

    @public_edge
    def reload(self) -> None:
        """Read the files and the secrets again; on error the previous configuration stays.

        The cached paths this configuration read are forgotten first, so every value is fetched
        anew; the backends themselves (their clients, tokens) are kept.
        """
        manager = self._state.manager
        for key in self._state.references:
            with contextlib.suppress(ConfigurationError):
                manager.invalidate(key)
        with self._lock:
            self._state = self._load(manager)

    def __repr__(self) -> str:
        if not hasattr(self, "_state"):  # shown by an error reporter while __init__ failed
            return f"{type(self).__name__}(not loaded)"
        files = [f.name for f in self._state.files]
        return (
            f"{type(self).__name__}(environment={self.environment!r}, files={files!r}, "
            f"sections={sorted(map(str, self._state.data))!r})"
        )


class SecureConfigManager(ConfigManager):
    """A :class:`ConfigManager` that also resolves references and decrypts encrypted values.

    Every string that is a reference (``secret:NAME`` from the default backend,
    ``vault:PATH#FIELD``, ``aws-secrets:NAME[#FIELD]``, ``env:NAME``, ``file:PATH``) is resolved
    in one pass, each backend path read once, paths concurrently; every Fernet token (or ``enc:``
    value) is decrypted with ``FERNET_KEY``. All failures are reported together in one
    :class:`~yosai_secrets.errors.ValidationError`, which names each key, reference, backend and
    cause, never a value.
    """

    _resolve_references: ClassVar[bool] = True
