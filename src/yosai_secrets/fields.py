"""What the manager does with a backend's answer: pick the field, and name where it came from.

Backends read paths; users ask for keys (``DB_PASSWORD``, ``secret/data/db#password``). These
functions turn a path's answer into the key's value, and word "not found" for the key asked.
"""

from __future__ import annotations

from typing import Any

from .backends import Backend, Fetched, Location
from .errors import ConfigurationError, SecretNotFoundError

__all__ = ["is_batch", "not_found_for", "select_field", "where"]


def not_found_for(key: str, location: Location, exc: SecretNotFoundError) -> SecretNotFoundError:
    """Name the requested key (and field) in a "not found" met while reading its path.

    Backends read paths, which several keys share; the user asked for a key.
    """
    if exc.key == key:
        return exc
    places = list(exc.places)
    if location.field is not None and places:
        places[-1] = f"{places[-1]} (field {location.field!r})"
    return SecretNotFoundError(key, places, exc.hint)


def is_batch(backend: Backend) -> bool:
    # A duck-typed check: isinstance() against a runtime Protocol costs microseconds per call.
    return callable(getattr(backend, "fetch_many", None))


def where(backend: Backend, path: str) -> str:
    """Name the source of ``path`` (backend, address, file), never its value."""
    describe = getattr(backend, "describe", None)
    if callable(describe):
        return str(describe(path))
    return f"{backend.name} {path}"


def select_field(key: str, where: str, field: str | None, raw: Fetched) -> str:
    """Pick ``field`` out of ``raw`` (read from ``where``) and return it as text."""
    data: Any = raw
    if field is None:
        if isinstance(raw, str):
            return raw
        if isinstance(raw, bytes):
            raise ConfigurationError(
                f"secret {key!r} ({where}) is binary; read it with get_bytes()"
            )
        names = sorted(map(str, raw))
        raise ConfigurationError(
            f"secret {key!r} ({where}) holds several fields ({', '.join(names) or 'none'}); "
            f"name one, e.g. {key}#{names[0] if names else 'field'}"
        )
    if isinstance(raw, str | bytes):
        try:
            import json  # here, not at start-up: most values are plain strings

            data = json.loads(raw)
        except RecursionError:
            raise ConfigurationError(
                f"secret {key!r}: {where} holds JSON nested too deeply to pick field "
                f"{field!r} from; store a flat JSON object"
            ) from None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ConfigurationError(
                f"secret {key!r}: {where} holds a plain value, not JSON with fields, so field "
                f"{field!r} cannot be selected; drop '#{field}'"
            ) from None
    if field not in data:
        present = ", ".join(sorted(map(str, data))) or "none"
        raise SecretNotFoundError(key, [f"{where} field {field!r} (fields present: {present})"])
    value = data[field]
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        import json

        return json.dumps(value)
    if value is None:
        raise SecretNotFoundError(key, [f"{where} field {field!r} (null)"])
    return str(value).lower() if isinstance(value, bool) else str(value)
