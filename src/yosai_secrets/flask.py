"""The Flask (and Dash) integration: :class:`YosaiSecrets`, an extension with ``init_app``.

>>> from flask import Flask
>>> from yosai_secrets.flask import YosaiSecrets
>>> app = Flask(__name__)
>>> YosaiSecrets(app)  # doctest: +SKIP

On ``init_app`` the extension loads the configuration (``SecureConfigManager``: it validates the
environment's required secrets and refuses to start when one is missing; in production it also
holds ``SECRET_KEY`` and every fallback key it installs to the strength rule), sets
``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` (always a list: a previous key kept during a rotation
so that sessions signed with it stay valid) and installs log redaction. A Dash app uses it
through its Flask server: ``YosaiSecrets(dash_app.server)``. The ``flask secrets ...`` commands
reach every app through the ``flask.commands`` entry point (:mod:`yosai_secrets.cli.flask_group`),
not through ``init_app``.

``SECRET_KEY_FALLBACKS`` is read with :func:`yosai_secrets.fallbacks.parse_fallbacks` (re-exported
here), the one parser rotation uses too.

Importing :mod:`yosai_secrets` never imports Flask; importing this module does. Neither this
module nor ``init_app`` imports the command line, the rotation package or rich.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any, Final, Protocol

from flask import Flask

from .edge import public_edge
from .environments import REQUIRED_SECRETS, current_environment, required_secrets
from .errors import (
    ConfigurationError,
    SecretNotFoundError,
    StartupError,
    StartupValidationError,
    ValidationError,
)
from .fallbacks import FALLBACKS_KEY, parse_fallbacks
from .manager import SecretManager, default_manager
from .references import is_reference
from .secret import install_redaction, register_secret_value

__all__ = [
    "EXTENSION_KEY",
    "MIN_FLASK_VERSION",
    "StartupValidationError",
    "YosaiSecrets",
    "check_flask_version",
    "current_extension",
    "parse_fallbacks",
    "secret_lookups",
]

_log = logging.getLogger("yosai_secrets.flask")

#: The key of the extension's state in ``app.extensions``.
EXTENSION_KEY: Final = "yosai_secrets"

#: Flask 3.1.0 signed sessions with the last fallback key instead of SECRET_KEY (fixed in 3.1.1).
MIN_FLASK_VERSION: Final = (3, 1, 1)


class _Config(Protocol):
    """What the extension needs of a (Secure)ConfigManager."""

    def get(self, key: str, default: Any = ...) -> Any: ...


def check_flask_version(version: str | None = None) -> str:
    """Return the installed Flask version, refusing one older than 3.1.1.

    Raises:
        StartupError: Flask is older than 3.1.1 (3.1.0 signs with the wrong key when
            ``SECRET_KEY_FALLBACKS`` is set).
    """
    found = version if version is not None else metadata.version("flask")
    numbers = tuple(int(part) for part in re.findall(r"\d+", found)[:3])
    if numbers < MIN_FLASK_VERSION:
        raise StartupError(
            f"Flask {found} is installed, but yosai-secrets needs Flask 3.1.1 or later: Flask "
            "3.1.0 signs sessions with the last SECRET_KEY_FALLBACKS key instead of SECRET_KEY; "
            "upgrade with: pip install 'yosai-secrets[flask]'"
        )
    return found


def _plain(value: object) -> str | None:
    """A configuration value as text (a ``Secret`` is revealed), or None when absent."""
    if value is None:
        return None
    reveal = getattr(value, "reveal", None)
    text = reveal() if callable(reveal) else value
    if not isinstance(text, str):
        return None
    return text if text.strip() else None


class YosaiSecrets:
    """The Flask extension: session keys from the secret sources, fail-closed start-up.

    Args:
        app: the Flask app (or call :meth:`init_app` later).
        config: a ready-made ``SecureConfigManager`` (or anything with ``get(key, default)``);
            default: one built from the environment on ``init_app``.
        manager: the secret manager to read through (default: the process-wide one behind
            ``get_secret``, so ``invalidate_secret()`` reaches the app).
        environ: the environment (default ``os.environ``).

    Raises:
        StartupError: on ``init_app``, ``SECRET_KEY`` is missing or Flask is too old; the message
            names ``SECRET_KEY`` and every place looked at.
        StartupValidationError: the configuration's validation failed (e.g. ``DB_PASSWORD`` in
            production), or in production ``SECRET_KEY`` or a ``SECRET_KEY_FALLBACKS`` key is a
            placeholder or too weak (the rule of ``yosai_secrets.config.validate``); every
            problem is listed, naming the key or its position, never a value.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        config: _Config | None = None,
        manager: SecretManager | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._config = config
        self._manager = manager
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self.environment = "production"
        self._lookups: dict[str, str | None] = {}
        self._clear_hooks: list[Callable[[], None]] = []
        if app is not None:
            self.init_app(app)

    def __repr__(self) -> str:
        return f"YosaiSecrets(environment={self.environment!r})"

    @property
    def manager(self) -> SecretManager:
        """The secret manager this extension reads through."""
        if self._manager is None:
            self._manager = default_manager()
        return self._manager

    @property
    def config(self) -> _Config | None:
        """The configuration loaded on ``init_app`` (None when the config layer is absent)."""
        return self._config

    @public_edge
    def init_app(self, app: Flask) -> None:
        """Configure ``app``: load and validate the configuration, set the session keys.

        Raises:
            StartupError: see the class.
        """
        check_flask_version()
        self.environment = current_environment(self._environ)
        if self._config is None:
            self._config = self._load_config()
        self._lookups = secret_lookups(self._environ, self.environment, self._config is not None)
        key, fallbacks = self._read_keys(
            app.config.get("SECRET_KEY"), app.config.get(FALLBACKS_KEY)
        )
        app.config["SECRET_KEY"] = key
        app.config[FALLBACKS_KEY] = fallbacks
        app.extensions[EXTENSION_KEY] = self
        self._install_redaction(app)

        def reload_keys() -> None:
            self.reload_keys(app)

        self._clear_hooks.append(reload_keys)

    def lookup(self, name: str) -> str | None:
        """The key to read secret ``name`` with, as the configuration resolves it.

        ``env:NAME`` when the variable is set (it overrides the files), the file's reference
        (``vault:secret/data/db#password``) when it has one, else ``NAME`` from the default
        backend; None when a configuration file holds the value itself.
        """
        return self._lookups.get(name, name)

    def on_clear(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` after every :meth:`clear_caches` (e.g. to drop a JWKS cache)."""
        self._clear_hooks.append(hook)

    def clear_caches(self, keys: Iterable[str] | None = None) -> int:
        """Forget cached secrets: ``keys``, or everything (then re-read the session keys).

        Returns how many cached paths were forgotten.
        """
        if keys is not None:
            return sum(self.manager.invalidate(k) for k in keys)
        count = self.manager.invalidate()
        reload = getattr(self._config, "reload", None)
        if callable(reload):
            try:
                reload()
            except ConfigurationError as exc:
                # Keep serving with what we have: a failed reload must not take the app down.
                _log.warning("configuration reload after a cache clear failed: %s", exc)
        self._lookups = secret_lookups(self._environ, self.environment, self._config is not None)
        for hook in list(self._clear_hooks):
            hook()
        return count

    def reload_keys(self, app: Flask) -> None:
        """Re-read ``SECRET_KEY`` and its fallbacks (after a rotation), keeping the old on error."""
        try:
            key, fallbacks = self._read_keys()
        except ConfigurationError as exc:
            _log.warning("keeping the current SECRET_KEY: re-reading it failed: %s", exc)
            return
        app.config["SECRET_KEY"] = key
        app.config[FALLBACKS_KEY] = fallbacks

    # -- internals ---------------------------------------------------------------------------

    def _load_config(self) -> _Config | None:
        try:
            from .config import SecureConfigManager
        except ImportError:
            # No config layer in this build: check the environment's required secrets directly.
            self._validate_required()
            return None
        try:
            loaded: _Config = SecureConfigManager(environ=self._environ, manager=self.manager)
        except ValidationError as exc:
            problems = list(exc.problems)
            about_key = [p for p in problems if p.startswith("SECRET_KEY")]
            if about_key and not any("looked at" in p for p in about_key):
                problems.append(f"SECRET_KEY: looked at {self._places_of('SECRET_KEY')}")
            raise StartupValidationError(
                problems,
                heading=f"refusing to start in {self.environment}: configuration is invalid",
            ) from exc
        return loaded

    def _validate_required(self) -> None:
        """Refuse to start when a secret the environment requires cannot be resolved."""
        names = [n for n in required_secrets(self.environment) if n != "SECRET_KEY"]
        problems = []
        for name, outcome in self.manager.get_many(names).items():
            if isinstance(outcome, SecretNotFoundError):
                problems.append(f"{name} is required in {self.environment} but is not set")
            elif isinstance(outcome, ConfigurationError):
                problems.append(f"{name} cannot be read: {outcome}")
        if problems:
            raise StartupValidationError(
                problems,
                heading=f"refusing to start in {self.environment}: required secrets are missing",
            )

    def _places_of(self, key: str) -> str:
        try:
            self.manager.get(key)
        except SecretNotFoundError as exc:
            return "; ".join(exc.places)
        except ConfigurationError as exc:
            return f"{self.manager.backend.name} backend ({exc})"
        return self.manager.describe(key)

    def _read_keys(
        self, preset_key: object = None, preset_fallbacks: object = None
    ) -> tuple[str, list[str]]:
        """The session key and its fallbacks; what the app was given itself comes last."""
        key = None
        if self._config is not None:
            key = _plain(self._config.get("security.secret_key", None))
        places: tuple[str, ...] = ()
        if key is None:
            try:
                key = _plain(self.manager.get("SECRET_KEY"))
            except SecretNotFoundError as exc:
                places = exc.places
        if key is None:
            key = _plain(preset_key)
        if key is None:
            looked = "; ".join(places) or f"the {self.manager.backend.name} backend"
            raise StartupError(
                "SECRET_KEY is not set, so sessions cannot be signed; refusing to start "
                f"(environment {self.environment}; looked at: configuration key "
                f"security.secret_key; {looked}). Set SECRET_KEY, SECRET_KEY_FILE or the Docker "
                "secret secret_key (development: run `yosai-secrets dev-secrets`)"
            )
        raw, source = self._read_fallbacks(preset_fallbacks)
        fallbacks = [k for k in parse_fallbacks(raw) if k != key]
        for value in (key, *fallbacks):
            register_secret_value(value)
        if self.environment == "production":
            self._check_strength(key, fallbacks, source)
        return key, fallbacks

    def _read_fallbacks(self, preset: object) -> tuple[object, str]:
        """``SECRET_KEY_FALLBACKS`` as stored, and where it was read (for messages)."""
        # Like the six secrets: the variable (a Kubernetes Secret's envFrom) wins, then the
        # configuration, then the default backend (the field `rotate` writes in Vault or AWS).
        raw: object = self._environ.get(FALLBACKS_KEY)
        if raw is not None:
            return raw, f"env {FALLBACKS_KEY}"
        if self._config is not None:
            raw = self._config.get("security.secret_key_fallbacks", None)
            if raw is not None:
                return raw, "configuration key security.secret_key_fallbacks"
        raw = self.manager.get(FALLBACKS_KEY, default="")
        if raw:
            return raw, f"the {self.manager.backend.name} backend"
        return preset, "the app's own config"

    def _check_strength(self, key: str, fallbacks: list[str], source: str) -> None:
        """Refuse, in production, a weak ``SECRET_KEY`` or fallback key: both open sessions.

        Raises:
            StartupValidationError: a key is a placeholder or too weak (named, never shown).
        """
        from .config.validate import fallback_key_problems, secret_key_weakness
        from .placeholders import is_placeholder

        problems = fallback_key_problems(fallbacks, source)
        weakness = "it is the example's placeholder" if is_placeholder(key) else None
        weakness = weakness or secret_key_weakness(key)
        if weakness is not None:
            problems.insert(0, f"SECRET_KEY is too weak for production: {weakness}")
        if problems:
            raise StartupValidationError(
                problems, heading=f"refusing to start in {self.environment}: weak session keys"
            )

    @staticmethod
    def _install_redaction(app: Flask) -> None:
        install_redaction()
        # Loggers that got their own handlers (Flask's default one when the root has none,
        # werkzeug's, gunicorn's) do not pass through the root's handlers: filter them too.
        for logger in (app.logger, *map(logging.getLogger, ("werkzeug", "gunicorn.error"))):
            if logger.handlers:
                install_redaction(logger)


def secret_lookups(
    environ: Mapping[str, str], environment: str, configured: bool
) -> dict[str, str | None]:
    """For each of the six secrets, the key that reads it as the configuration does.

    Without the configuration layer every secret is read by name from the default backend.
    """
    lookups: dict[str, str | None] = {name: name for name in REQUIRED_SECRETS}
    if not configured:
        return lookups
    from .config import SECRET_SETTINGS
    from .config.loader import deep_merge, find_config_files, load_yaml_file

    merged: dict[str, Any] = {}
    try:
        for file in find_config_files(None, environment, environ):
            merged = deep_merge(merged, load_yaml_file(file).data)
    except ConfigurationError:
        merged = {}  # the configuration loaded a moment ago; a race with an edit is harmless
    for name, path in SECRET_SETTINGS.items():
        if environ.get(name):
            lookups[name] = f"env:{name}"
            continue
        node: Any = merged
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, str) and is_reference(node):
            lookups[name] = node
        elif node is not None and node != "":
            lookups[name] = None
    return lookups


def current_extension(app: Flask) -> YosaiSecrets:
    """Return the extension installed on ``app``.

    Raises:
        ConfigurationError: ``YosaiSecrets`` was not initialised on this app.
    """
    found = app.extensions.get(EXTENSION_KEY)
    if not isinstance(found, YosaiSecrets):
        raise ConfigurationError("YosaiSecrets is not initialised on this app; call init_app(app)")
    return found
