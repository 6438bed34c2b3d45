"""ConfigManager and SecureConfigManager: layered YAML, secrets, references, validation.

Loading is one function, :func:`load_configuration`, that never raises for a problem it can report
(it returns them all); the managers raise one :class:`~yosai_secrets.errors.ValidationError`
listing everything, and ``yosai-secrets check`` prints the same findings as a table.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
from collections import ChainMap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final

from ..crypto import looks_encrypted
from ..environments import ENVIRONMENTS, current_environment
from ..errors import ConfigurationError, UnknownBackendError, ValidationError
from ..manager import SecretManager
from ..references import is_reference
from ..secret import MASK, redact, register_secret_value
from .keys import SECRET_SETTINGS, dotted, looks_secret_key
from .loader import deep_merge, find_config_files, load_yaml_file
from .resolve import (
    KeyPath,
    Kind,
    Request,
    get_path,
    group_problems,
    iter_resolvable,
    resolve_requests,
    set_path,
)
from .validate import SecretState, validate_secrets

__all__ = ["ConfigManager", "LoadedConfiguration", "SecureConfigManager", "load_configuration"]

_log = logging.getLogger("yosai_secrets.config")
_NO_DEFAULT: Final[Any] = object()
_SECRET_PATHS: Final = frozenset(SECRET_SETTINGS.values())


@dataclass(slots=True)
class LoadedConfiguration:
    """Everything one load found: data, files, each secret's state, and every problem."""

    environment: str
    files: list[Path]
    data: dict[str, Any] = field(repr=False)
    secrets: dict[str, SecretState]
    masked: set[KeyPath]
    problems: list[str]
    references: list[str]
    manager: SecretManager = field(repr=False)

    @property
    def secret_values(self) -> list[str]:
        """The values obtained (for scrubbing messages; never shown)."""
        return [s.value for s in self.secrets.values() if s.value]


_LABELS: Final[dict[KeyPath, str]] = {
    key: f"{dotted(key)} ({name})" for name, key in SECRET_SETTINGS.items()
}


def _label(path: KeyPath) -> str:
    return _LABELS.get(path) or ".".join(map(str, path))


def _copy_tree(data: Any) -> Any:
    """Copy the mappings and lists of parsed YAML (scalars are immutable)."""
    if isinstance(data, dict):
        return {k: _copy_tree(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy_tree(v) for v in data]
    return data


def _origin(layers: list[tuple[Path, dict[str, Any]]], path: KeyPath) -> str:
    """The file whose value for ``path`` won the merge (the last layer that sets it)."""
    for file, data in reversed(layers):
        try:
            get_path(data, path)
        except KeyError:
            continue
        return str(file.name)
    return "configuration"


def _build_manager(
    manager: SecretManager | None, environ: Mapping[str, str], findings: list[tuple[str, str]]
) -> SecretManager:
    if manager is not None:
        return manager
    try:
        return SecretManager(environ=environ)
    except UnknownBackendError:
        raise
    except ConfigurationError as exc:
        # The default backend cannot be built (e.g. SECRET_BACKEND=vault without VAULT_ADDR):
        # report it with everything else; references to other backends still resolve.
        name = environ.get("SECRET_BACKEND", "").strip()
        findings.append((f"SECRET_BACKEND={name}", redact(str(exc))))
        return SecretManager("env", environ=environ)


def load_configuration(
    path: str | os.PathLike[str] | None = None,
    *,
    env: str | None = None,
    environ: Mapping[str, str] | None = None,
    manager: SecretManager | None = None,
    resolve_references: bool = True,
    validate: bool = True,
) -> LoadedConfiguration:
    """Load, merge, fill, resolve and validate; report problems instead of raising them.

    Raises:
        ConfigurationError: only what makes loading impossible: an unknown environment or secret
            backend, or a configuration file that is missing or not safe YAML.
    """
    environ = os.environ if environ is None else environ
    if env is None:
        env = current_environment(environ)
    elif env not in ENVIRONMENTS:
        raise ConfigurationError(
            f"environment {env!r} is not known; use one of {', '.join(ENVIRONMENTS)}"
        )
    files = find_config_files(path, env, environ)
    layers = [(f, load_yaml_file(f).data) for f in files]
    data: dict[str, Any] = {}
    for _, layer in layers:
        data = deep_merge(data, layer)
    # Secrets are written into this tree below; the layers stay as parsed, for _origin().
    data = _copy_tree(data)
    # (subject, cause) of each failure; one line per cause is reported (group_problems).
    findings: list[tuple[str, str]] = []
    # The environment chosen here (e.g. `check --env development`) decides the backends'
    # development conveniences, not whatever YOSAI_ENV happens to say.
    if environ.get("YOSAI_ENV", "").strip().lower() != env:
        environ = ChainMap({"YOSAI_ENV": env}, dict(environ))
    manager = _build_manager(manager, environ, findings)
    backend_broken = "; ".join(group_problems(findings))

    secrets: dict[str, SecretState] = {}
    requests: list[Request] = []
    for name, key in SECRET_SETTINGS.items():
        from_env = environ.get(name, "")
        if from_env:
            set_path(data, key, from_env)
            if looks_encrypted(from_env):
                requests.append(Request(key, "encrypted", from_env, _label(key), f"env {name}"))
                continue
            register_secret_value(from_env)
            secrets[name] = SecretState(name, "found", f"env {name}", from_env)
            continue
        try:
            written = get_path(data, key)
        except KeyError:
            written = None
        if written is None or written == "":
            if backend_broken:
                secrets[name] = SecretState(name, "error", "error", detail=backend_broken)
            else:
                requests.append(Request(key, "fill", name, _label(key), described=True))
            continue
        text = written if isinstance(written, str) else str(written)
        origin = f"config file {_origin(layers, key)}"
        # The six secrets are always obtained, references and encrypted values included: a
        # secret is never validated (or handed out) as the text of its reference.
        if is_reference(text):
            requests.append(Request(key, "reference", text, _label(key), origin, True))
        elif looks_encrypted(text):
            requests.append(Request(key, "encrypted", text, _label(key), origin, True))
        else:
            register_secret_value(text)
            secrets[name] = SecretState(name, "found", origin, text)

    resolved_paths: set[KeyPath] = set()
    if resolve_references:
        for key_path, text in iter_resolvable(data):
            if key_path in _SECRET_PATHS:
                continue  # requested above (or overridden by the environment)
            kind: Kind = "reference" if is_reference(text) else "encrypted"
            # Only encrypted values report the file they were written in.
            origin = f"config file {_origin(layers, key_path)}" if kind == "encrypted" else ""
            requests.append(Request(key_path, kind, text, _label(key_path), origin))
    outcomes = resolve_requests(requests, manager, environ)
    for request in requests:
        outcome = outcomes[request.path]
        if outcome.subject is not None and outcome.cause is not None:
            findings.append((outcome.subject, outcome.cause))
        if outcome.value is not None:
            set_path(data, request.path, outcome.value)
            resolved_paths.add(request.path)
    for name, key in SECRET_SETTINGS.items():
        if name in secrets or key not in outcomes:
            continue
        outcome = outcomes[key]
        if outcome.value is not None:
            secrets[name] = SecretState(name, "found", outcome.source, outcome.value)
        elif outcome.problem is not None:
            secrets[name] = SecretState(name, "error", outcome.source, detail=outcome.problem)
        else:
            places = getattr(outcome.error, "places", ())
            secrets[name] = SecretState(name, "missing", "missing", detail="; ".join(places))

    problems = group_problems(findings)
    if validate:
        config_file = files[-1].name if files else None
        problems.extend(validate_secrets(env, secrets, config_file))
    masked = {k for k in SECRET_SETTINGS.values()} | resolved_paths
    _log.debug(
        "configuration for %s loaded from %s; secrets: %s",
        env,
        ", ".join(f.name for f in files) or "no file",
        ", ".join(f"{s.name}={s.status}" for s in secrets.values()),
    )
    return LoadedConfiguration(
        environment=env,
        files=files,
        data=data,
        secrets=secrets,
        masked=masked,
        problems=problems,
        references=[r.text for r in requests if r.kind != "encrypted"],
        manager=manager,
    )


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
        files = [f.name for f in self._state.files]
        return (
            f"{type(self).__name__}(environment={self.environment!r}, files={files!r}, "
            f"sections={sorted(map(str, self._state.data))!r})"
        )


class SecureConfigManager(ConfigManager):
    """A :class:`ConfigManager` that also resolves references and decrypts encrypted values.

    Every string that is a reference (``vault:PATH#FIELD``, ``aws-secrets:NAME[#FIELD]``,
    ``env:NAME``, ``file:PATH``) is resolved in one pass, each backend path read once, paths
    concurrently; every Fernet token (or ``enc:`` value) is decrypted with ``FERNET_KEY``. All
    failures are reported together in one :class:`~yosai_secrets.errors.ValidationError`, which
    names each key, reference, backend and cause, never a value.
    """

    _resolve_references: ClassVar[bool] = True
