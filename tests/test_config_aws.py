"""SecureConfigManager with references to both OpenBao and the AWS emulator (moto's server)."""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.conftest import require
from yosai_secrets.config import SecureConfigManager
from yosai_secrets.errors import ValidationError

require(importlib.util.find_spec("boto3"), "boto3", "pip install 'yosai-secrets[aws]'")

pytestmark = pytest.mark.integration

STRONG = "Zq8vN2kP5tR7wY1aB4cD6eF9gH3jK0mLxQ"


@pytest.fixture
def both(
    vault_env: Any, aws_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[Any, Any]:
    """OpenBao and the AWS emulator configured in the environment, run from an empty folder."""
    monkeypatch.delenv("SECRET_BACKEND", raising=False)
    monkeypatch.chdir(tmp_path)
    return vault_env, aws_env


def test_production_config_with_vault_and_aws(
    both: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A production file mixing vault: and aws-secrets: references resolves every secret."""
    openbao, moto = both
    uid = uuid.uuid4().hex
    key = Fernet.generate_key()
    openbao.client().secrets.kv.v2.create_or_update_secret(
        path=f"{uid}/app",
        secret={"secret_key": STRONG, "client_id": "cid-from-vault"},
        mount_point="secret",
    )
    sm = moto.client()
    sm.create_secret(Name=f"{uid}/db_password", SecretString="db-password-from-aws")
    sm.create_secret(
        Name=f"{uid}/auth0",
        SecretString=json.dumps(
            {
                "client_secret": "enc:" + Fernet(key).encrypt(b"auth0-secret-aws").decode(),
                "domain": "tenant.eu.auth0.com",
                "audience": "https://api.yosai",
            }
        ),
    )
    (tmp_path / "production.yaml").write_text(
        f"security: {{secret_key: 'vault:secret/data/{uid}/app#secret_key'}}\n"
        f"database: {{password: 'aws-secrets:{uid}/db_password'}}\n"
        "auth0:\n"
        f"  client_id: 'vault:secret/data/{uid}/app#client_id'\n"
        f"  client_secret: 'aws-secrets:{uid}/auth0#client_secret'\n"
        f"  domain: 'aws-secrets:{uid}/auth0#domain'\n"
        f"  audience: 'aws-secrets:{uid}/auth0#audience'\n"
    )
    monkeypatch.setenv("FERNET_KEY", key.decode())
    cfg = SecureConfigManager(tmp_path)
    assert cfg.get("database.password") == "db-password-from-aws"
    assert cfg.get("auth0.client_secret") == "auth0-secret-aws"
    assert cfg.get("auth0.client_id") == "cid-from-vault"
    sources = cfg.sources()
    assert sources["SECRET_KEY"].startswith(f"vault {openbao.addr}")
    assert "aws" in sources["DB_PASSWORD"] and f"{uid}/db_password" in sources["DB_PASSWORD"]
    for text in (repr(cfg), str(cfg.as_dict()), str(sources)):
        assert "db-password-from-aws" not in text


def test_aws_and_vault_failures_reported_together(both: tuple[Any, Any], tmp_path: Path) -> None:
    """A missing AWS secret, a missing JSON key and a missing Vault path: one error, all named."""
    _, moto = both
    uid = uuid.uuid4().hex
    moto.client().create_secret(Name=f"{uid}/auth0", SecretString=json.dumps({"domain": "d"}))
    (tmp_path / "production.yaml").write_text(
        f"security: {{secret_key: '{STRONG}'}}\n"
        f"database: {{password: 'aws-secrets:{uid}/nope'}}\n"
        "auth0:\n"
        f"  client_id: 'vault:secret/data/{uid}/missing#client_id'\n"
        f"  client_secret: 'aws-secrets:{uid}/auth0#client_secret'\n"
        f"  domain: 'aws-secrets:{uid}/auth0#domain'\n"
        "  audience: https://api\n"
    )
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(tmp_path)
    message = str(info.value)
    assert len(info.value.problems) == 3, message
    assert f"database.password (DB_PASSWORD): reference aws-secrets:{uid}/nope" in message
    assert "backend aws" in message and "backend vault" in message
    assert "auth0.client_secret (AUTH0_CLIENT_SECRET)" in message
    assert "auth0.client_id (AUTH0_CLIENT_ID)" in message


def test_missing_aws_region_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aws-secrets: with no region configured is reported as a problem naming the key."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("SECRET_KEY", STRONG)
    (tmp_path / "test.yaml").write_text("database: {password: 'aws-secrets:prod/db_password'}\n")
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(tmp_path, env="test")
    message = str(info.value)
    assert "database.password (DB_PASSWORD): reference aws-secrets:prod/db_password" in message
    assert "region" in message.lower() or "credential" in message.lower()
