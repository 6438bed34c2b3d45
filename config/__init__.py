"""The application's configuration, and the import path the operator guide documents.

>>> from config import SecureConfigManager
>>> cfg = SecureConfigManager()  # doctest: +SKIP

The YAML files of this directory are what ``ConfigManager()`` loads by default (``./config``):
``base.yaml``, then ``<YOSAI_ENV>.yaml``.
"""

from __future__ import annotations

from yosai_secrets.config import ConfigManager, SecureConfigManager
from yosai_secrets.errors import ConfigurationError

__all__ = ["ConfigManager", "ConfigurationError", "SecureConfigManager"]
