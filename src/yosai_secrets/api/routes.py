"""The API's endpoints: health, readiness, the secrets' posture and cache invalidation.

No endpoint ever returns a secret value: they return names, places, states and times.
"""

from __future__ import annotations

from typing import Any, Final

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from ..environments import REQUIRED_SECRETS, required_secrets
from ..errors import ConfigurationError
from ..flask import YosaiSecrets, current_extension
from .auth import (
    ADMIN_PERMISSION,
    INVALIDATE_TOKEN_VARIABLE,
    requires_auth,
    requires_auth_or_token,
)
from .posture import (
    RotationInfoProvider,
    StoreRotationInfo,
    max_age_days,
    posture,
    unresolvable,
)

__all__ = ["blueprint", "rotation_info_of", "secrets_posture"]

_STORE_INFO_KEY: Final = "yosai_secrets.rotation_info"

#: The most keys one invalidation request may name.
_MAX_KEYS: Final = 100

blueprint = Blueprint("yosai_secrets_api", __name__)


def rotation_info_of(app: Flask) -> RotationInfoProvider:
    """The app's rotation info provider (``YOSAI_ROTATION_INFO``), else the store's or files'."""
    provider = app.config.get("YOSAI_ROTATION_INFO")
    if callable(provider):
        given: RotationInfoProvider = provider
        return given
    found = app.extensions.get(_STORE_INFO_KEY)
    if not isinstance(found, StoreRotationInfo):
        found = StoreRotationInfo()
        app.extensions[_STORE_INFO_KEY] = found
        current_extension(app).on_clear(found.clear)
    return found


def secrets_posture(ext: YosaiSecrets) -> dict[str, Any]:
    """The posture document of ``GET /api/secrets`` (also drawn by the posture page)."""
    policy = max_age_days()
    rows = posture(
        ext.manager,
        environment=ext.environment,
        lookups={name: ext.lookup(name) for name in REQUIRED_SECRETS},
        rotation_info=rotation_info_of(current_app),
        max_age=policy,
    )
    return {
        "environment": ext.environment,
        "backend": ext.manager.backend.name,
        "policy_days": policy,
        "secrets": [row.as_dict() for row in rows],
    }


def _json(status_code: int, **body: Any) -> Response:
    response = jsonify(body)
    response.status_code = status_code
    return response


@blueprint.get("/healthz")
def healthz() -> Response:
    """The process is alive and answering."""
    return _json(200, status="ok")


@blueprint.get("/readyz")
def readyz() -> Response:
    """Every secret the environment requires resolves now; else 503 with their names."""
    ext = current_extension(current_app)
    names = list(required_secrets(ext.environment))
    failing = unresolvable(ext.manager, names, {name: ext.lookup(name) for name in names})
    if failing:
        return _json(503, status="not ready", unresolvable=failing)
    return _json(200, status="ready")


@blueprint.get("/api/secrets")
@requires_auth()
def list_secrets() -> Response:
    """For each secret: source, state, version, last rotation, days until due. Never a value."""
    return _json(200, **secrets_posture(current_extension(current_app)))


@blueprint.post("/api/secrets/invalidate")
@requires_auth_or_token(ADMIN_PERMISSION, INVALIDATE_TOKEN_VARIABLE)
def invalidate() -> Response:
    """Forget this process's cached secrets: all of them, or ``{"keys": [...]}``.

    Allowed to an Auth0 token with ``secrets:admin``, or to a rotation holding the API's
    ``SECRETS_INVALIDATE_TOKEN`` (``ROTATION_NOTIFY_TOKEN`` on its side).
    """
    keys = None
    if request.content_length:
        body = request.get_json(silent=True)
        keys = body.get("keys") if isinstance(body, dict) else []
        valid = keys is None or (
            isinstance(keys, list)
            and 0 < len(keys) <= _MAX_KEYS
            and all(isinstance(k, str) and k.strip() for k in keys)
        )
        if not valid:
            return _json(
                400, error=f'bad request: send {{"keys": [names]}} (1 to {_MAX_KEYS}) or no body'
            )
    ext = current_extension(current_app)
    try:
        count = ext.clear_caches(keys)
    except ConfigurationError:
        return _json(400, error="bad request: a key is not a valid secret name")
    return _json(200, invalidated=keys if keys is not None else "all", paths=count)
