"""What leaked: each incident key's values, captured before anything rotates, held as Secrets.

The leaked value of a key is what it is now: the manifest's value, the environment's, and the
secret store's (read through a :class:`~yosai_secrets.manager.SecretManager` built from the same
environment the application uses). ``SECRET_KEY``'s fallbacks are its previous values. Values live
only in memory, as :class:`~yosai_secrets.secret.Secret`: the scan and the revocations look for
them; nothing writes them anywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import YosaiSecretsError
from ..secret import Secret

__all__ = ["Leaked", "capture_leaked"]

_log = logging.getLogger("yosai_secrets.audit.incident")


@dataclass(frozen=True)
class Leaked:
    """One key's leaked values: ``current`` (served now), ``previous`` (fallbacks); and where from.

    The repr shows the key and the sources, never a value.
    """

    key: str
    current: tuple[Secret, ...] = ()
    previous: tuple[Secret, ...] = ()
    sources: tuple[str, ...] = field(default=())

    @property
    def values(self) -> tuple[Secret, ...]:
        """Every leaked value, current first, each once."""
        return tuple(dict.fromkeys((*self.current, *self.previous)))


def capture_leaked(
    keys: Sequence[str], environ: Mapping[str, str], manifest: Path | None
) -> dict[str, Leaked]:
    """Each key's values now, from the manifest, the environment and the secret store.

    Never raises for a source that cannot be read (it is left out, and logged by name): the
    incident goes on with what could be captured.
    """
    found: dict[str, dict[str, list[str]]] = {k: {"current": [], "previous": []} for k in keys}
    sources: dict[str, list[str]] = {k: [] for k in keys}
    _from_manifest(keys, manifest, found, sources)
    for key in keys:
        value = environ.get(key, "").strip()
        if value:
            found[key]["current"].append(value)
            sources[key].append("environment")
    _from_store(keys, environ, found, sources)
    return {
        key: Leaked(
            key,
            tuple(Secret(v) for v in dict.fromkeys(found[key]["current"])),
            tuple(
                Secret(v)
                for v in dict.fromkeys(found[key]["previous"])
                if v not in found[key]["current"]
            ),
            tuple(dict.fromkeys(sources[key])),
        )
        for key in keys
    }


def _from_manifest(
    keys: Sequence[str],
    manifest: Path | None,
    found: dict[str, dict[str, list[str]]],
    sources: dict[str, list[str]],
) -> None:
    if manifest is None or not manifest.is_file():
        return
    from ..rotation.generate import FALLBACKS_KEY, is_placeholder, parse_fallbacks
    from ..rotation.manifest import SecretManifest

    try:
        loaded = SecretManifest(manifest)
    except YosaiSecretsError as exc:
        _log.warning("incident: cannot read the manifest %s (%s)", manifest, type(exc).__name__)
        return
    for key in keys:
        if loaded.has(key) and not is_placeholder(loaded.get(key)):
            found[key]["current"].append(loaded.get(key))
            sources[key].append(f"manifest {manifest}")
        if key == "SECRET_KEY" and loaded.has(FALLBACKS_KEY):
            found[key]["previous"].extend(
                k for k in parse_fallbacks(loaded.get(FALLBACKS_KEY)) if not is_placeholder(k)
            )


def _from_store(
    keys: Sequence[str],
    environ: Mapping[str, str],
    found: dict[str, dict[str, list[str]]],
    sources: dict[str, list[str]],
) -> None:
    backend = environ.get("SECRET_BACKEND", "").strip().lower()
    if backend in ("", "env"):
        return  # the environment was read above
    from ..manager import SecretManager

    try:
        manager = SecretManager(environ=environ, audit=False)
    except YosaiSecretsError as exc:
        _log.warning("incident: cannot open the %s store (%s)", backend, type(exc).__name__)
        return
    try:
        for key in keys:
            try:
                value = manager.get(key)
            except YosaiSecretsError:
                continue  # not in the store: the manifest or the environment has it
            if value:
                found[key]["current"].append(value)
                sources[key].append(f"{backend} store")
    finally:
        manager.close()
