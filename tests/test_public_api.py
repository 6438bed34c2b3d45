"""The declared public surface and the import-cost promise."""

from __future__ import annotations

import subprocess
import sys

import yosai_secrets
from yosai_secrets import errors


def test_all_is_sorted_and_importable() -> None:
    """__all__ is sorted and every name in it exists."""
    assert list(yosai_secrets.__all__) == sorted(yosai_secrets.__all__)
    for name in yosai_secrets.__all__:
        assert hasattr(yosai_secrets, name), name


def test_issue_names_are_public() -> None:
    """The names the operator guide uses are importable from the package."""
    for name in (
        "get_secret",
        "invalidate_secret",
        "SecretManager",
        "Secret",
        "ConfigurationError",
        "SecretNotFoundError",
    ):
        assert name in yosai_secrets.__all__


def test_one_error_tree() -> None:
    """Every error class derives from YosaiSecretsError and is drawn in errors.py's docstring."""
    assert issubclass(errors.SecretNotFoundError, errors.ConfigurationError)
    assert issubclass(errors.StartupError, RuntimeError)
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.YosaiSecretsError)
        assert name in doc, f"{name} is missing from the tree in errors.py's docstring"


def test_import_is_light() -> None:
    """Importing yosai_secrets imports none of boto3, hvac, Flask, Dash or click."""
    code = (
        "import sys, yosai_secrets, yosai_secrets.backends, yosai_secrets.manager;"
        "heavy = [m for m in ('boto3', 'botocore', 'hvac', 'flask', 'dash', 'click', 'rich',"
        " 'psycopg', 'ruamel', 'yaml') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_services_common_secrets_path() -> None:
    """services.common.secrets re-exports the package's get_secret and invalidate_secret."""
    from services.common import secrets as documented

    assert documented.get_secret is yosai_secrets.get_secret
    assert documented.invalidate_secret is yosai_secrets.invalidate_secret
