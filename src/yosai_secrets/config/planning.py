"""Plan how each secret-bearing setting is obtained: found now, or a request to resolve.

:mod:`.loading` assembles a configuration; this module decides, for the six secrets, their
companion (``database.user``), ``SECRET_KEY_FALLBACKS`` and every other reference, whether the
value is at hand (a variable, plain text in a file) or must be requested (a reference, an
encrypted value, a fill from the default backend). A file value that cannot be a secret (not
text, a misspelt reference) is reported here, by setting and file, never by value.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ..crypto import looks_encrypted
from ..errors import ConfigurationError
from ..fallbacks import FALLBACKS_KEY, parse_fallbacks
from ..references import is_reference
from ..secret import register_secret_value
from .keys import COMPANION_SETTINGS, FALLBACKS_SETTING, SECRET_SETTINGS, dotted, not_text
from .resolve import KeyPath, Kind, Request, get_path, iter_resolvable, set_path
from .validate import SecretState, misspelt_scheme

__all__ = [
    "SECRET_PATHS",
    "Layers",
    "fallbacks_state",
    "label_of",
    "not_text_problems",
    "origin_of",
    "plan_companions",
    "plan_fallbacks",
    "plan_secrets",
    "reference_requests",
]

#: The configuration keys of the six secrets.
SECRET_PATHS: Final = frozenset(SECRET_SETTINGS.values())
_COMPANION_PATHS: Final = frozenset({*COMPANION_SETTINGS.values(), FALLBACKS_SETTING})

#: Each configuration file with its data as parsed, lowest precedence first.
Layers = list[tuple[Path, dict[str, Any]]]

_LABELS: Final[dict[KeyPath, str]] = {
    key: f"{dotted(key)} ({name})"
    for name, key in (
        *SECRET_SETTINGS.items(),
        *COMPANION_SETTINGS.items(),
        (FALLBACKS_KEY, FALLBACKS_SETTING),
    )
}


def label_of(path: KeyPath) -> str:
    """How messages name the setting at ``path`` (``database.password (DB_PASSWORD)``)."""
    return _LABELS.get(path) or ".".join(map(str, path))


def origin_of(layers: Layers, path: KeyPath) -> str:
    """The file whose value for ``path`` won the merge (the last layer that sets it)."""
    for file, data in reversed(layers):
        try:
            get_path(data, path)
        except KeyError:
            continue
        return str(file.name)
    return "configuration"


def plan_secrets(
    data: dict[str, Any],
    layers: Layers,
    environ: Mapping[str, str],
    backend_broken: str,
    refused: dict[KeyPath, str],
    findings: list[tuple[str, str]],
) -> tuple[dict[str, SecretState], list[Request]]:
    """Each of the six secrets, as found in plain text now or as a request to obtain it.

    A variable of the secret's name wins over the files, and is written into ``data``.
    ``backend_broken`` is why the default backend could not be built ("" if it was);
    ``refused`` holds the problem of each file value that is not text (already reported). A
    file value that looks like a misspelt reference is added to ``findings``.
    """
    secrets: dict[str, SecretState] = {}
    requests: list[Request] = []
    for name, key in SECRET_SETTINGS.items():
        from_env = environ.get(name, "")
        if from_env:
            set_path(data, key, from_env)
            planned = _plan_environ_secret(name, key, from_env)
        elif key in refused:
            planned = SecretState(name, "error", "error", detail=refused[key])
        else:
            planned = _plan_written_secret(name, key, data, layers, backend_broken, findings)
        if isinstance(planned, SecretState):
            secrets[name] = planned
        else:
            requests.append(planned)
    return secrets, requests


def _plan_environ_secret(name: str, key: KeyPath, value: str) -> SecretState | Request:
    if looks_encrypted(value):
        return Request(key, "encrypted", value, label_of(key), f"env {name}")
    register_secret_value(value)
    return SecretState(name, "found", f"env {name}", value)


def _plan_written_secret(
    name: str,
    key: KeyPath,
    data: dict[str, Any],
    layers: Layers,
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
        return Request(key, "fill", name, label_of(key), described=True)
    origin = f"config file {origin_of(layers, key)}"
    text = str(written)  # a value that is not text never gets here (not_text_problems)
    problem = _misspelt_problem(key, text, layers, findings)
    if problem is not None:
        return SecretState(name, "error", origin, detail=problem)
    # The six secrets are always obtained, references and encrypted values included: a
    # secret is never validated (or handed out) as the text of its reference.
    if is_reference(text):
        return Request(key, "reference", text, label_of(key), origin, True)
    if looks_encrypted(text):
        return Request(key, "encrypted", text, label_of(key), origin, True)
    register_secret_value(text)
    return SecretState(name, "found", origin, text)


def plan_companions(
    data: dict[str, Any],
    layers: Layers,
    environ: Mapping[str, str],
    refused: dict[KeyPath, str],
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
            if not isinstance(written, str) or key in refused:
                continue
            text, origin = written, f"config file {origin_of(layers, key)}"
            if is_reference(text):
                requests.append(Request(key, "reference", text, label_of(key)))
                continue
        if looks_encrypted(text):
            requests.append(Request(key, "encrypted", text, label_of(key), origin))
    return requests


def not_text_problems(
    data: dict[str, Any], layers: Layers, findings: list[tuple[str, str]]
) -> dict[KeyPath, str]:
    """Report each secret-bearing setting whose file value is not text (never showing it).

    A file that holds one is wrong whether or not a variable overrides it, so it is reported
    before the variables are applied. ``SECRET_KEY_FALLBACKS`` may also be a list.
    """
    problems: dict[KeyPath, str] = {}
    for key in (*SECRET_SETTINGS.values(), *COMPANION_SETTINGS.values(), FALLBACKS_SETTING):
        try:
            written = get_path(data, key)
        except KeyError:
            continue
        kind = None if key == FALLBACKS_SETTING and isinstance(written, list) else not_text(written)
        if kind is None:
            continue
        subject = f"{label_of(key)} in {origin_of(layers, key)}"
        cause = (
            f"must be text (a string), but the file holds {kind}; quote the value, or write a "
            "reference (secret:NAME, vault:PATH#FIELD, aws-secrets:NAME)"
        )
        findings.append((subject, cause))
        problems[key] = f"{subject}: {cause}"
    return problems


def _misspelt_problem(
    key: KeyPath, text: str, layers: Layers, findings: list[tuple[str, str]]
) -> str | None:
    """Report a file value that looks like a reference with a misspelt scheme (not shown)."""
    scheme = misspelt_scheme(text)
    if scheme is None:
        return None
    subject = f"{label_of(key)} in {origin_of(layers, key)}"
    cause = (
        f"looks like a reference whose scheme is misspelt (did you mean {scheme}:?), and would "
        "be used as the secret itself; correct the scheme (schemes: secret, vault, aws-secrets, "
        "env, file)"
    )
    findings.append((subject, cause))
    return f"{subject}: {cause}"


def plan_fallbacks(
    data: dict[str, Any],
    layers: Layers,
    environ: Mapping[str, str],
    backend_broken: str,
    refused: dict[KeyPath, str],
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
            label = label_of(FALLBACKS_SETTING)
            return Request(FALLBACKS_SETTING, "fill", FALLBACKS_KEY, label, described=True)
        origin = f"config file {origin_of(layers, FALLBACKS_SETTING)}"
        if isinstance(written, list):
            # A list of keys, as Flask takes it; parse_fallbacks refuses one of anything else.
            return fallbacks_state(origin, json.dumps(written, default=repr))
        if FALLBACKS_SETTING in refused or not isinstance(written, str):
            return None
        text = written
        if is_reference(text):
            return Request(FALLBACKS_SETTING, "reference", text, label_of(FALLBACKS_SETTING))
    if looks_encrypted(text):
        return Request(FALLBACKS_SETTING, "encrypted", text, label_of(FALLBACKS_SETTING), origin)
    return fallbacks_state(origin, text)


def fallbacks_state(source: str, text: str) -> SecretState:
    """The found ``SECRET_KEY_FALLBACKS``; each key is registered for redaction."""
    with contextlib.suppress(ConfigurationError):  # validation reports what does not parse
        for key in parse_fallbacks(text):
            register_secret_value(key)
    return SecretState(FALLBACKS_KEY, "found", source, text)


def reference_requests(data: dict[str, Any], layers: Layers) -> list[Request]:
    """A request for every other reference or encrypted value in ``data``."""
    requests = []
    for key_path, text in iter_resolvable(data):
        if key_path in SECRET_PATHS or key_path in _COMPANION_PATHS:
            continue  # planned with the six secrets (or overridden by the environment)
        kind: Kind = "reference" if is_reference(text) else "encrypted"
        # Only encrypted values report the file they were written in.
        origin = f"config file {origin_of(layers, key_path)}" if kind == "encrypted" else ""
        requests.append(Request(key_path, kind, text, label_of(key_path), origin))
    return requests
