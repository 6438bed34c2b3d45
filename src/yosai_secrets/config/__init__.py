"""Secure configuration: layered YAML, secret references resolved in one pass, validation.

>>> from yosai_secrets.config import SecureConfigManager
>>> cfg = SecureConfigManager()  # doctest: +SKIP
>>> cfg.get("database.password")  # doctest: +SKIP
"""

from __future__ import annotations

from .core import ConfigManager, SecureConfigManager
from .keys import SECRET_SETTINGS
from .loader import load_yaml_text
from .loading import LoadedConfiguration, load_configuration

__all__ = [
    "SECRET_SETTINGS",
    "ConfigManager",
    "LoadedConfiguration",
    "SecureConfigManager",
    "load_configuration",
    "load_yaml_text",
]
