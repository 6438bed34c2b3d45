"""The reference API service and its posture page: :func:`create_app`.

>>> from yosai_secrets.api import create_app
>>> app = create_app()  # doctest: +SKIP

There is no module-level app: gunicorn runs ``yosai_secrets.api:create_app()``, and
``yosai-secrets serve`` does that for you.

Settings (``create_app(config)`` or the app's config):

- ``YOSAI_DASHBOARD`` (default True): mount the posture page at ``/dashboard/`` when Dash is
  installed; ``GET /`` then redirects there.
- ``YOSAI_SIGHUP`` (default True): clear every cache on SIGHUP (main thread only).
- ``YOSAI_ROTATION_INFO``: a callable ``(name, manager) -> RotationInfo | None`` saying when each
  secret was last rotated (default: the rotation records, else the secret file's modification time).
- ``METRICS_TOKEN``: the bearer token ``GET /metrics`` requires (unset: none); see
  ``docs/metrics.md``.
- ``YOSAI_JWKS_URL`` (or the ``AUTH0_JWKS_URL`` variable): **for tests only**, the address of the
  JWKS instead of ``https://AUTH0_DOMAIN/.well-known/jwks.json``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, redirect, request
from flask.typing import ResponseReturnValue

from ..errors import ConfigurationError
from ..flask import YosaiSecrets, check_flask_version

__all__ = ["create_app"]

_log = logging.getLogger("yosai_secrets.api")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build a fresh API app: the extension, the endpoints, the posture page, SIGHUP.

    Args:
        config: Flask settings applied before the extension loads (``TESTING``, the ``YOSAI_*``
            settings of this module).

    Raises:
        StartupError: ``SECRET_KEY`` is missing or unusable, or Flask is older than 3.1.1.
        StartupValidationError: the environment's required secrets are missing (e.g.
            ``DB_PASSWORD`` in production); every problem is listed.
    """
    check_flask_version()
    app = Flask(__name__)
    app.config.update(YOSAI_DASHBOARD=True, YOSAI_SIGHUP=True, MAX_CONTENT_LENGTH=64 * 1024)
    if config:
        app.config.from_mapping(config)
    ext = YosaiSecrets(app)
    _configure_auth0(app, ext)

    from .login import blueprint as login_blueprint
    from .metrics import blueprint as metrics_blueprint
    from .routes import blueprint

    app.register_blueprint(blueprint)
    app.register_blueprint(login_blueprint)
    app.register_blueprint(metrics_blueprint)
    _session_cookie(app, ext, config or {})
    if app.config["YOSAI_DASHBOARD"]:
        _mount_dashboard(app)
    app.after_request(_security_headers)
    if app.config["YOSAI_SIGHUP"]:
        from .signals import install_sighup

        install_sighup(ext)
    return app


def _mount_dashboard(app: Flask) -> None:
    """The posture page at /dashboard/ and ``GET /`` sent there; without Dash, a warning."""
    try:
        from .dashboard import init_dashboard

        init_dashboard(app)
    except ConfigurationError as exc:
        _log.warning("the posture page is off: %s", exc)
    else:
        app.add_url_rule("/", "index", _to_dashboard)


def _to_dashboard() -> ResponseReturnValue:
    """``GET /``: the posture page is what a person opening the service's address wants."""
    from .dashboard import DASHBOARD_PATH

    return redirect(request.script_root + DASHBOARD_PATH, code=302)


def _configure_auth0(app: Flask, ext: YosaiSecrets) -> None:
    """Build the token verifier from AUTH0_DOMAIN and AUTH0_AUDIENCE (absent: every token fails)."""
    from .auth import VERIFIER_KEY, Auth0Verifier

    domain = _setting(ext, "auth0.domain", "AUTH0_DOMAIN")
    audience = _setting(ext, "auth0.audience", "AUTH0_AUDIENCE")
    if not domain or not audience:
        _log.info("AUTH0_DOMAIN/AUTH0_AUDIENCE not set: the /api/secrets endpoints refuse all")
        return
    jwks_url = app.config.get("YOSAI_JWKS_URL") or os.environ.get("AUTH0_JWKS_URL")
    if jwks_url:
        _log.warning("JWKS address overridden to %s: a test-only setting", jwks_url)
    verifier = Auth0Verifier.create(domain, audience, jwks_url)
    app.extensions[VERIFIER_KEY] = verifier
    ext.on_clear(verifier.jwks.clear)


def _session_cookie(app: Flask, ext: YosaiSecrets, given: Mapping[str, Any]) -> None:
    """Session cookies: Lax (the login's callback is a top-level GET), Secure as configured."""
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    secure = ext.config.get("security.session_cookie_secure", None) if ext.config else None
    if isinstance(secure, bool) and "SESSION_COOKIE_SECURE" not in given:
        app.config["SESSION_COOKIE_SECURE"] = secure


def _setting(ext: YosaiSecrets, config_key: str, secret_name: str) -> str | None:
    if ext.config is not None:
        value = ext.config.get(config_key, None)
        if isinstance(value, str) and value.strip():
            return value.strip()
    try:
        found = ext.manager.get(secret_name, default="").strip()
    except ConfigurationError as exc:
        _log.warning("%s cannot be read: %s", secret_name, exc)
        return None
    return found or None


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if response.mimetype == "application/json":
        response.headers.setdefault("Cache-Control", "no-store")
    return response
