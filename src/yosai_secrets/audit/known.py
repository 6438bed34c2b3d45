"""Gathering the values to scan for: each configured secret's current and previous values.

Sources, each read only (nothing here writes):

1. the default manager's backend (``SECRET_BACKEND``: environment and files, Vault/OpenBao, AWS)
   for the secrets among the six required keys and ``SECRET_KEY_FALLBACKS``; with Vault, the
   earlier KV v2 versions still readable at the same path are previous values;
2. the Kubernetes Secret manifest (``--manifest``, default ``k8s/config/api-secrets.yaml`` when it
   exists, as for ``rotate``): its secret-like keys, with ``SECRET_KEY_FALLBACKS`` as previous
   values of ``SECRET_KEY``;
3. the rotation journal beside that manifest, if a rotation is open: its new values are current,
   its old ones previous;
4. the sources' own credentials in the environment: ``FERNET_KEY`` (each key), ``VAULT_TOKEN``,
   ``VAULT_SECRET_ID``, ``AWS_SECRET_ACCESS_KEY``.

``AUTH0_CLIENT_ID``, ``AUTH0_DOMAIN``, ``AUTH0_AUDIENCE`` (and the manifest's ``DB_USER``,
``DB_HOST``...) are public identifiers that belong in configuration files: finding them is not a
leak, so they are not searched for. Placeholders of the shipped example are not values either.
Every value gathered is registered for log redaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from ..errors import ConfigurationError, SecretNotFoundError
from ..fallbacks import FALLBACKS_KEY, parse_fallbacks
from ..placeholders import is_placeholder
from ..secret import register_secret_value
from .scan import SecretValues

__all__ = ["BACKEND_KEYS", "ENVIRON_CREDENTIALS", "known_values", "source_files"]

#: The secrets among the six required keys, read from the default backend.
BACKEND_KEYS: Final = ("SECRET_KEY", "DB_PASSWORD", "AUTH0_CLIENT_SECRET")
#: The sources' own credentials, read from the environment.
ENVIRON_CREDENTIALS: Final = (
    "FERNET_KEY",
    "VAULT_TOKEN",
    "VAULT_SECRET_ID",
    "AWS_SECRET_ACCESS_KEY",
)
#: A manifest key holding a secret (the rest are identifiers: DB_USER, DB_HOST, AUTH0_DOMAIN...).
_SECRET_NAME: Final = re.compile(r".*(?:PASSWORD|SECRET|TOKEN|_KEY|SECRET_ID)")
#: Earlier Vault versions read at most (KV v2 keeps 10 by default).
_VAULT_VERSIONS: Final = 10


def known_values(
    environ: Mapping[str, str], *, manifest: Path | None = None
) -> dict[str, SecretValues]:
    """The current and previous values of every configured secret, by name (see the module).

    Args:
        environ: the environment the backend and credentials are configured from.
        manifest: the Kubernetes Secret manifest; default ``k8s/config/api-secrets.yaml`` when it
            exists (a manifest given explicitly must exist).

    Raises:
        ConfigurationError: a configured source fails (unreachable store, unreadable manifest or
            journal); the message names it, never a value.
    """
    found: dict[str, SecretValues] = {}

    def add(name: str, values: SecretValues) -> None:
        found[name] = found[name].merged(values) if name in found else values

    for name, values in _from_backend(environ).items():
        add(name, values)
    for name, values in _from_manifest(manifest).items():
        add(name, values)
    for name in ENVIRON_CREDENTIALS:
        raw = environ.get(name, "")
        keys = [k.strip() for k in raw.split(",")] if name == "FERNET_KEY" else [raw.strip()]
        add(name, SecretValues.of(keys))
    return _cleaned(found)


def source_files(environ: Mapping[str, str], *, manifest: Path | None = None) -> list[Path]:
    """The files the values are read from: finding a value there is no leak.

    The manifest and its journal, each ``NAME_FILE`` of the secrets read, the files of the Docker
    secrets directory (``SECRETS_DIR``) and the development ``secrets/*.txt``.
    """
    from ..backends.env import DEFAULT_SECRETS_DIR
    from ..rotation.journal import journal_path
    from ..rotation.plan import DEFAULT_MANIFEST

    path = manifest if manifest is not None else DEFAULT_MANIFEST
    files = [path, journal_path(path)]
    for key in (*BACKEND_KEYS, FALLBACKS_KEY, *ENVIRON_CREDENTIALS):
        named = environ.get(f"{key}_FILE", "").strip()
        if named:
            files.append(Path(named))
    for directory in (Path(environ.get("SECRETS_DIR") or DEFAULT_SECRETS_DIR), Path("secrets")):
        if directory.is_dir():
            files += [f for f in directory.iterdir() if f.is_file() and f.name != "README.md"]
    return files


def _cleaned(found: dict[str, SecretValues]) -> dict[str, SecretValues]:
    """Without placeholders and empty entries; every value registered for redaction."""
    out: dict[str, SecretValues] = {}
    for name, values in found.items():
        current = tuple(v for v in values.current if v and not is_placeholder(v.reveal()))
        previous = tuple(v for v in values.previous if v and not is_placeholder(v.reveal()))
        if current or previous:
            out[name] = SecretValues(current, previous)
            for value in (*current, *previous):
                register_secret_value(value.reveal())
    return out


def _with_fallbacks(values: Mapping[str, str]) -> dict[str, SecretValues]:
    """``values`` by name, ``SECRET_KEY_FALLBACKS`` split into previous values of SECRET_KEY."""
    out = {k: SecretValues.of(v) for k, v in values.items() if k != FALLBACKS_KEY}
    fallbacks = parse_fallbacks(values.get(FALLBACKS_KEY))
    if fallbacks:
        out["SECRET_KEY"] = out.get("SECRET_KEY", SecretValues()).merged(
            SecretValues.of(None, fallbacks)
        )
    return out


def _from_backend(environ: Mapping[str, str]) -> dict[str, SecretValues]:
    from ..manager import SecretManager

    manager = SecretManager(environ=environ)
    try:
        current: dict[str, str] = {}
        for key in (*BACKEND_KEYS, FALLBACKS_KEY):
            try:
                current[key] = manager.get(key)
            except SecretNotFoundError:
                continue
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"cannot read {key} from the {manager.backend.name} backend to scan for its "
                    f"values: {exc}"
                ) from exc
        found = _with_fallbacks(current)
        if manager.backend.name == "vault":
            for name, older in _vault_previous(manager.backend, current).items():
                found[name] = found.get(name, SecretValues()).merged(SecretValues.of(None, older))
        return found
    finally:
        manager.close()


def _vault_previous(backend: Any, current: Mapping[str, str]) -> dict[str, list[str]]:
    """Earlier KV v2 versions of the paths the keys live at: each key's earlier values."""
    request: Callable[[str, str], Any] = backend.request
    versions_of: dict[str, list[dict[str, Any]]] = {}
    older: dict[str, list[str]] = {}
    for key in current:
        path, field = backend.locate(key)
        if "/data/" not in path or field is None:
            continue  # KV v1 keeps no versions
        if path not in versions_of:
            versions_of[path] = _earlier_versions(request, path)
        values = [data.get(field) for data in versions_of[path]]
        older[key] = [v for v in values if isinstance(v, str) and v]
    if FALLBACKS_KEY in older:
        flat = [k for raw in older.pop(FALLBACKS_KEY) for k in _parsed(raw)]
        older["SECRET_KEY"] = [*older.get("SECRET_KEY", []), *flat]
    return older


def _parsed(raw: str) -> list[str]:
    try:
        return parse_fallbacks(raw)
    except ConfigurationError:
        return []


def _earlier_versions(request: Callable[[str, str], Any], path: str) -> list[dict[str, Any]]:
    """The data of the readable versions before the current one, newest first (at most 10)."""
    from ..backends.vault_http import VaultStatusError

    mount, _, rest = path.partition("/data/")
    try:
        meta = (request("GET", f"{mount}/metadata/{rest}") or {}).get("data") or {}
    except VaultStatusError:
        return []  # no permission on metadata: the current values are still scanned for
    current = int(meta.get("current_version") or 0)
    readable = [
        int(number)
        for number, info in (meta.get("versions") or {}).items()
        if int(number) != current and not info.get("destroyed") and not info.get("deletion_time")
    ]
    out = []
    for number in sorted(readable, reverse=True)[:_VAULT_VERSIONS]:
        try:
            answer = request("GET", f"{path}?version={number}") or {}
        except VaultStatusError:
            continue
        data = (answer.get("data") or {}).get("data")
        if isinstance(data, dict):
            out.append(data)
    return out


def _from_manifest(manifest: Path | None) -> dict[str, SecretValues]:
    """The manifest's secret-like values, and the open rotation's journal beside it."""
    from ..rotation.plan import DEFAULT_MANIFEST

    path = manifest if manifest is not None else DEFAULT_MANIFEST
    if manifest is None and not path.exists():
        return {}
    from ..rotation.journal import Journal, journal_path
    from ..rotation.manifest import SecretManifest

    held = SecretManifest(path).values()
    found = _with_fallbacks(_secret_like(held))
    journal = Journal.load(journal_path(path))
    if journal is not None:
        state = journal.state
        plain = set(state.plain)
        new = _with_fallbacks(_secret_like({k: v for k, v in state.new.items() if k not in plain}))
        old = _with_fallbacks(_secret_like({k: v for k, v in state.old.items() if k not in plain}))
        for name, values in new.items():
            found[name] = found.get(name, SecretValues()).merged(values)
        for name, values in old.items():
            retired = SecretValues((), (*values.current, *values.previous))
            found[name] = found.get(name, SecretValues()).merged(retired)
    return found


def _secret_like(values: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if _SECRET_NAME.fullmatch(k) or k == FALLBACKS_KEY}
