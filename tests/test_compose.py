"""docker-compose.yml mounts the local secret files as Docker secrets."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_secrets_stanza() -> None:
    """The compose file declares both secrets from secrets/*.txt and points *_FILE at them."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["secrets"]["db_password"]["file"] == "./secrets/db_password.txt"
    assert compose["secrets"]["secret_key"]["file"] == "./secrets/secret_key.txt"
    services = compose["services"]
    service = next(s for s in services.values() if "secrets" in s)
    assert set(service["secrets"]) >= {"db_password", "secret_key"}
    env = service["environment"]
    assert env["DB_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert env["SECRET_KEY_FILE"] == "/run/secrets/secret_key"


def test_secrets_folder_is_ignored_except_readme() -> None:
    """Git ignores secrets/ except its README, which says how to fill it."""
    ignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "/secrets/*" in ignore
    assert "!/secrets/README.md" in ignore
    readme = (ROOT / "secrets" / "README.md").read_text()
    assert "db_password.txt" in readme
    assert "secret_key.txt" in readme
