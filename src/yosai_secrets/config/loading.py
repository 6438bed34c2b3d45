"""Assemble one configuration: merge the files, obtain the secrets, resolve, validate.

:mod:`.loader` reads the YAML files; this module builds a configuration from them. Loading is one
function, :func:`load_configuration`, that never raises for a problem it can report (it returns
them all); the managers (:mod:`.core`) raise one :class:`~yosai_secrets.errors.ValidationError`
listing everything, and ``yosai-secrets check`` prints the same findings as a table.
"""

from __future__ import annotations

import logging
import os
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..environments import ENVIRONMENTS, current_environment
from ..errors import ConfigurationError, UnknownBackendError
from ..fallbacks import FALLBACKS_KEY
from ..manager import SecretManager
from ..references import reads_default_backend
from ..secret import redact
from .keys import FALLBACKS_SETTING, SECRET_SETTINGS
from .loader import deep_merge, find_config_files, load_yaml_file
from .planning import (
    SECRET_PATHS,
    Layers,
    fallbacks_state,
    not_text_problems,
    plan_companions,
    plan_fallbacks,
    plan_secrets,
    reference_requests,
)
from .resolve import (
    KeyPath,
    Outcome,
    Request,
    group_problems,
    resolve_requests,
    set_path,
)
from .validate import SecretState, validate_secrets

__all__ = ["LoadedConfiguration", "load_configuration"]

_log = logging.getLogger("yosai_secrets.config")


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
        masked={*SECRET_PATHS, FALLBACKS_SETTING} | resolved_paths,
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


def _merge_layers(layers: Layers) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for _, layer in layers:
        data = deep_merge(data, layer)
    # Secrets are written into the merged tree later; the layers stay as parsed, for origin_of().
    merged: dict[str, Any] = _copy_tree(data)
    return merged


def _copy_tree(data: Any) -> Any:
    """Copy the mappings and lists of parsed YAML (scalars are immutable)."""
    if isinstance(data, dict):
        return {k: _copy_tree(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy_tree(v) for v in data]
    return data


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
    layers: Layers,
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
    refused = not_text_problems(data, layers, findings)
    secrets, requests = plan_secrets(data, layers, environ, broken, refused, findings)
    requests.extend(plan_companions(data, layers, environ, refused))
    fallbacks = plan_fallbacks(data, layers, environ, broken, refused)
    if isinstance(fallbacks, SecretState):
        secrets[FALLBACKS_KEY] = fallbacks
    elif fallbacks is not None:
        requests.append(fallbacks)
    if resolve_references:
        requests.extend(reference_requests(data, layers))
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
        secrets[FALLBACKS_KEY] = fallbacks_state(fallback.source, fallback.value)
    return secrets, requests, resolved_paths


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
