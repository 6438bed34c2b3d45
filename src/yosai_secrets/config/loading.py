"""Assemble one configuration: merge the files, obtain the secrets, resolve, validate.

:mod:`.loader` reads the YAML files; this module builds a configuration from them. Loading is one
function, :func:`load_configuration`, that never raises for a problem it can report (it returns
them all); the managers (:mod:`.core`) raise one :class:`~yosai_secrets.errors.ValidationError`
listing everything, and ``yosai-secrets check`` prints the same findings as a table.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ..crypto import looks_encrypted
from ..environments import ENVIRONMENTS, current_environment
from ..errors import ConfigurationError, UnknownBackendError
from ..fallbacks import FALLBACKS_KEY, parse_fallbacks
from ..manager import SecretManager
from ..references import is_reference, reads_default_backend
from ..secret import redact, register_secret_value
from .keys import COMPANION_SETTINGS, FALLBACKS_SETTING, SECRET_SETTINGS, dotted, not_text
from .loader import deep_merge, find_config_files, load_yaml_file
from .resolve import (
    KeyPath,
    Kind,
    Outcome,
    Request,
    get_path,
    group_problems,
    iter_resolvable,
    resolve_requests,
    set_path,
)
from .validate import SecretState, validate_secrets

__all__ = ["LoadedConfiguration", "load_configuration"]

_log = logging.getLogger("yosai_secrets.config")
_SECRET_PATHS: Final = frozenset(SECRET_SETTINGS.values())
_COMPANION_PATHS: Final = frozenset({*COMPANION_SETTINGS.values(), FALLBACKS_SETTING})

#: Each configuration file with its data as parsed, lowest precedence first.
_Layers = list[tuple[Path, dict[str, Any]]]


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
    key: f"{dotted(key)} ({name})"
    for name, key in (
        *SECRET_SETTINGS.items(),
        *COMPANION_SETTINGS.items(),
        (FALLBACKS_KEY, FALLBACKS_SETTING),
    )
}


def _label(path: KeyPath) -> str:
    return _LABELS.get(path) or ".".join(map(str, path))


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
    env = _checked_environment(env, environ)
    files = find_config_files(path, env, environ)
    layers = [(f, load_yaml_file(f).data) for f in files]
    data = _merge_layers(layers)
    # (subject, cause) of each failure; one line per cause is reported (group_problems).
    findings: list[tuple[str, str]] = []
    environ = _with_environment(environ, env)
    manager = _build_manager(manager, environ, findings)
    secrets, requests, resolved_paths = _obtain_values(
        data, layers, environ, manager, findings, resolve_references
    )
    problems = group_problems(findings)
    if validate:
        problems.extend(validate_secrets(env, secrets, files[-1].name if files else None))
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
        masked={*_SECRET_PATHS, FALLBACKS_SETTING} | resolved_paths,
        problems=problems,
        references=[r.text for r in requests if r.kind != "encrypted"],
        manager=manager,
    )


def _checked_environment(env: str | None, environ: Mapping[str, str]) -> str:
    """The environment asked for, else the one ``environ`` names (``production`` if none)."""
    if env is None:
        return current_environment(environ)
    if env not in ENVIRONMENTS:
        raise ConfigurationError(
            f"environment {env!r} is not known; use one of {', '.join(ENVIRONMENTS)}"
        )
    return env


def _with_environment(environ: Mapping[str, str], env: str) -> Mapping[str, str]:
    # The environment chosen here (e.g. `check --env development`) decides the backends'
    # development conveniences, not whatever YOSAI_ENV happens to say.
    if environ.get("YOSAI_ENV", "").strip().lower() != env:
        return ChainMap({"YOSAI_ENV": env}, dict(environ))
    return environ


def _merge_layers(layers: _Layers) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for _, layer in layers:
        data = deep_merge(data, layer)
    # Secrets are written into the merged tree later; the layers stay as parsed, for _origin().
    merged: dict[str, Any] = _copy_tree(data)
    return merged


def _copy_tree(data: Any) -> Any:
    """Copy the mappings and lists of parsed YAML (scalars are immutable)."""
    if isinstance(data, dict):
        return {k: _copy_tree(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy_tree(v) for v in data]
    return data


def _origin(layers: _Layers, path: KeyPath) -> str:
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


def _obtain_values(
    data: dict[str, Any],
    layers: _Layers,
    environ: Mapping[str, str],
    manager: SecretManager,
    findings: list[tuple[str, str]],
    resolve_references: bool,
) -> tuple[dict[str, SecretState], list[Request], set[KeyPath]]:
    """Obtain the six secrets (and every other reference if asked) and write them into ``data``.

    Returns:
        Each secret's state, the requests made, and the key paths whose value was obtained.
    """
    # _build_manager's one finding, when the default backend could not be built.
    broken_cause = findings[0][1] if findings else None
    broken = "; ".join(group_problems(findings))
    secrets, requests = _plan_secrets(data, layers, environ, broken, findings)
    requests.extend(_plan_companions(data, layers, environ, findings))
    fallbacks = _plan_fallbacks(data, layers, environ, broken, findings)
    if isinstance(fallbacks, SecretState):
        secrets[FALLBACKS_KEY] = fallbacks
    elif fallbacks is not None:
        requests.append(fallbacks)
    if resolve_references:
        requests.extend(_reference_requests(data, layers))
    waiting: list[Request] = []
    if broken_cause is not None:
        # secret:NAME means the configured default backend, never the env fallback used instead.
        waiting = [r for r in requests if r.kind == "reference" and reads_default_backend(r.text)]
        requests = [r for r in requests if r not in waiting]
    outcomes = resolve_requests(requests, manager, environ)
    if broken_cause is not None:
        outcomes.update(_unreadable(waiting, environ, broken_cause))
        requests.extend(waiting)
    resolved_paths = _apply_outcomes(data, requests, outcomes, findings)
    _record_secret_outcomes(secrets, outcomes)
    fallback = outcomes.get(FALLBACKS_SETTING)
    if fallback is not None and fallback.value is not None:
        secrets[FALLBACKS_KEY] = _fallbacks_state(fallback.source, fallback.value)
    return secrets, requests, resolved_paths


def _plan_secrets(
    data: dict[str, Any],
    layers: _Layers,
    environ: Mapping[str, str],
    backend_broken: str,
    findings: list[tuple[str, str]],
) -> tuple[dict[str, SecretState], list[Request]]:
    """Each of the six secrets, as found in plain text now or as a request to obtain it.

    A variable of the secret's name wins over the files, and is written into ``data``.
    ``backend_broken`` is why the default backend could not be built ("" if it was). A file
    value that is not text is added to ``findings``.
    """
    secrets: dict[str, SecretState] = {}
    requests: list[Request] = []
    for name, key in SECRET_SETTINGS.items():
        from_env = environ.get(name, "")
        if from_env:
            set_path(data, key, from_env)
            planned = _plan_environ_secret(name, key, from_env)
        else:
            planned = _plan_written_secret(name, key, data, layers, backend_broken, findings)
        if isinstance(planned, SecretState):
            secrets[name] = planned
        else:
            requests.append(planned)
    return secrets, requests


def _plan_environ_secret(name: str, key: KeyPath, value: str) -> SecretState | Request:
    if looks_encrypted(value):
        return Request(key, "encrypted", value, _label(key), f"env {name}")
    register_secret_value(value)
    return SecretState(name, "found", f"env {name}", value)


def _plan_written_secret(
    name: str,
    key: KeyPath,
    data: dict[str, Any],
    layers: _Layers,
    backend_broken: str,
    findings: list[tuple[str, str]],
) -> SecretState | Request:
    try:
        written = get_path(data, key)
    except KeyError:
        written = None
    if written is None or written == "":
        if backend_broken:
            return SecretState(name, "error", "error", detail=backend_broken)
        return Request(key, "fill", name, _label(key), described=True)
    origin = f"config file {_origin(layers, key)}"
    problem = _not_text_problem(key, written, layers, findings)
    if problem is not None:
        return SecretState(name, "error", origin, detail=problem)
    text = str(written)
    # The six secrets are always obtained, references and encrypted values included: a
    # secret is never validated (or handed out) as the text of its reference.
    if is_reference(text):
        return Request(key, "reference", text, _label(key), origin, True)
    if looks_encrypted(text):
        return Request(key, "encrypted", text, _label(key), origin, True)
    register_secret_value(text)
    return SecretState(name, "found", origin, text)


def _plan_companions(
    data: dict[str, Any],
    layers: _Layers,
    environ: Mapping[str, str],
    findings: list[tuple[str, str]],
) -> list[Request]:
    """A request for each companion setting (``database.user``) that is a reference or encrypted.

    As for the six: its variable (``DB_USER``) overrides the file, and its reference is resolved
    even by a :class:`~yosai_secrets.config.ConfigManager`, so that a user and its password always
    come from the same place.
    """
    requests: list[Request] = []
    for name, key in COMPANION_SETTINGS.items():
        text = environ.get(name, "")
        origin = f"env {name}"
        if text:
            set_path(data, key, text)
        else:
            try:
                written = get_path(data, key)
            except KeyError:
                continue
            if not isinstance(written, str):
                _not_text_problem(key, written, layers, findings)
                continue
            text, origin = written, f"config file {_origin(layers, key)}"
            if is_reference(text):
                requests.append(Request(key, "reference", text, _label(key)))
                continue
        if looks_encrypted(text):
            requests.append(Request(key, "encrypted", text, _label(key), origin))
    return requests


def _not_text_problem(
    key: KeyPath, written: object, layers: _Layers, findings: list[tuple[str, str]]
) -> str | None:
    """Report a secret-bearing setting whose file value is not text (never showing it)."""
    kind = not_text(written)
    if kind is None:
        return None
    subject = f"{_label(key)} in {_origin(layers, key)}"
    cause = (
        f"must be text (a string), but the file holds {kind}; quote the value, or write a "
        "reference (secret:NAME, vault:PATH#FIELD, aws-secrets:NAME)"
    )
    findings.append((subject, cause))
    return f"{subject}: {cause}"


def _plan_fallbacks(
    data: dict[str, Any],
    layers: _Layers,
    environ: Mapping[str, str],
    backend_broken: str,
    findings: list[tuple[str, str]],
) -> SecretState | Request | None:
    """``SECRET_KEY_FALLBACKS`` as the Flask extension reads it, so that validation sees it.

    Its variable wins, then the configuration (``security.secret_key_fallbacks``: a list, the
    stored JSON text, a reference or an encrypted value), then the default backend's
    ``SECRET_KEY_FALLBACKS``. None when there is nothing to read.
    """
    text, origin = environ.get(FALLBACKS_KEY, ""), f"env {FALLBACKS_KEY}"
    if not text.strip():
        try:
            written = get_path(data, FALLBACKS_SETTING)
        except KeyError:
            written = None
        if written is None or written == "":
            if backend_broken:
                return None
            label = _label(FALLBACKS_SETTING)
            return Request(FALLBACKS_SETTING, "fill", FALLBACKS_KEY, label, described=True)
        origin = f"config file {_origin(layers, FALLBACKS_SETTING)}"
        if isinstance(written, list):
            # A list of keys, as Flask takes it; parse_fallbacks refuses one of anything else.
            return _fallbacks_state(origin, json.dumps(written, default=repr))
        if _not_text_problem(FALLBACKS_SETTING, written, layers, findings) is not None:
            return None
        text = str(written)
        if is_reference(text):
            return Request(FALLBACKS_SETTING, "reference", text, _label(FALLBACKS_SETTING))
    if looks_encrypted(text):
        return Request(FALLBACKS_SETTING, "encrypted", text, _label(FALLBACKS_SETTING), origin)
    return _fallbacks_state(origin, text)


def _fallbacks_state(source: str, text: str) -> SecretState:
    """The found ``SECRET_KEY_FALLBACKS``; each key is registered for redaction."""
    with contextlib.suppress(ConfigurationError):  # validation reports what does not parse
        for key in parse_fallbacks(text):
            register_secret_value(key)
    return SecretState(FALLBACKS_KEY, "found", source, text)


def _reference_requests(data: dict[str, Any], layers: _Layers) -> list[Request]:
    """A request for every other reference or encrypted value in ``data``."""
    requests = []
    for key_path, text in iter_resolvable(data):
        if key_path in _SECRET_PATHS or key_path in _COMPANION_PATHS:
            continue  # planned with the six secrets (or overridden by the environment)
        kind: Kind = "reference" if is_reference(text) else "encrypted"
        # Only encrypted values report the file they were written in.
        origin = f"config file {_origin(layers, key_path)}" if kind == "encrypted" else ""
        requests.append(Request(key_path, kind, text, _label(key_path), origin))
    return requests


def _unreadable(
    requests: list[Request], environ: Mapping[str, str], cause: str
) -> dict[KeyPath, Outcome]:
    """The outcome of each ``secret:`` reference while the default backend cannot be built.

    Each fails with the backend's own cause, so the problems group into one line naming every key
    (one hint per cause).
    """
    backend = environ.get("SECRET_BACKEND", "").strip() or "env"
    outcomes: dict[KeyPath, Outcome] = {}
    for request in requests:
        subject = f"{request.label}: reference {request.text} (backend {backend})"
        outcomes[request.path] = Outcome(
            request.text,
            error=ConfigurationError(cause),
            problem=f"{subject}: {cause}",
            subject=subject,
            cause=cause,
        )
    return outcomes


def _apply_outcomes(
    data: dict[str, Any],
    requests: list[Request],
    outcomes: dict[KeyPath, Outcome],
    findings: list[tuple[str, str]],
) -> set[KeyPath]:
    """Write each value obtained into ``data``, add each failure to ``findings``.

    Returns:
        The key paths whose value was obtained.
    """
    resolved: set[KeyPath] = set()
    for request in requests:
        outcome = outcomes[request.path]
        if outcome.subject is not None and outcome.cause is not None:
            findings.append((outcome.subject, outcome.cause))
        if outcome.value is not None:
            set_path(data, request.path, outcome.value)
            resolved.add(request.path)
    return resolved


def _record_secret_outcomes(
    secrets: dict[str, SecretState], outcomes: dict[KeyPath, Outcome]
) -> None:
    """Add the state of each of the six secrets that was requested rather than found."""
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
