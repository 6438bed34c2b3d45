"""ConfigManager and SecureConfigManager with in-memory backends: layering, secrets, references."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from yosai_secrets.backends.base import Fetched
from yosai_secrets.config import ConfigManager, SecureConfigManager
from yosai_secrets.errors import ConfigurationError, ValidationError
from yosai_secrets.manager import SecretManager
from yosai_secrets.secret import MASK
from yosai_secrets.testing import MemoryBackend

STRONG = "Zq8vN2kP5tR7wY1aB4cD6eF9gH3jK0mLxQ"
AUTH0 = {
    "AUTH0_CLIENT_ID": "client-id-1234",
    "AUTH0_CLIENT_SECRET": "client-secret-5678",
    "AUTH0_DOMAIN": "tenant.eu.auth0.com",
    "AUTH0_AUDIENCE": "https://api.yosai",
}


def write(directory: Path, name: str, text: str) -> Path:
    """Write one configuration file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")
    return directory / name


def environ(tmp_path: Path, **values: str) -> dict[str, str]:
    """An isolated environment dict (its own Docker secrets directory)."""
    return {"SECRETS_DIR": str(tmp_path / "run-secrets"), **values}


def manager_with(
    env: dict[str, str], vault: dict[str, Any] | None = None, *, default: Any = "env"
) -> tuple[SecretManager, MemoryBackend]:
    """A manager whose vault: references read an in-memory backend."""
    manager = SecretManager(default, environ=env)
    backend = MemoryBackend(vault or {}, name="vault")
    manager.add_backend(backend)
    return manager, backend


def test_environment_variable_overrides_file_and_skips_the_read(tmp_path: Path) -> None:
    """An environment variable of the secret's name wins over the YAML, which is not read."""
    write(tmp_path, "test.yaml", "database:\n  password: vault:secret/data/db#password\n")
    env = environ(tmp_path, SECRET_KEY=STRONG, DB_PASSWORD="from-env-pw")
    manager, vault = manager_with(env, {"secret/data/db": {"password": "from-vault"}})
    cfg = SecureConfigManager(tmp_path, env="test", environ=env, manager=manager)
    assert cfg.get("database.password") == "from-env-pw"
    assert cfg.sources()["DB_PASSWORD"] == "env DB_PASSWORD"
    assert vault.calls == 0


def test_secret_filled_from_default_backend_when_file_is_silent(tmp_path: Path) -> None:
    """A secret the YAML does not set is read from the default backend (SECRET_BACKEND)."""
    env = environ(tmp_path)
    backend = MemoryBackend({"SECRET_KEY": STRONG, "DB_PASSWORD": "pw-from-store"})
    cfg = ConfigManager(tmp_path, env="test", environ=env, manager=SecretManager(backend))
    assert cfg.get("security.secret_key") == STRONG
    assert cfg["database"]["password"] == "pw-from-store"
    assert cfg.sources()["DB_PASSWORD"] == "memory DB_PASSWORD"
    assert cfg.sources()["AUTH0_DOMAIN"] == "missing"
    assert list(cfg.sources()) == [
        "SECRET_KEY",
        "DB_PASSWORD",
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "AUTH0_DOMAIN",
        "AUTH0_AUDIENCE",
    ]


def test_secret_from_docker_secret_file(tmp_path: Path) -> None:
    """With the env backend, a Docker secret file fills the secret and sources names the file."""
    env = environ(tmp_path)
    write(tmp_path / "run-secrets", "secret_key", STRONG + "\n")
    cfg = ConfigManager(tmp_path / "conf", env="staging", environ=env)
    assert cfg.get("security.secret_key") == STRONG
    assert "run-secrets/secret_key" in cfg.sources()["SECRET_KEY"]


def test_plain_value_in_file_and_access_api(tmp_path: Path) -> None:
    """A value written in the file is used; get, sections and mapping access behave as a dict."""
    write(
        tmp_path,
        "test.yaml",
        f"security: {{secret_key: {STRONG}}}\ndatabase: {{host: db, port: 5432}}\nflags: [a, b]\n",
    )
    cfg = ConfigManager(tmp_path, env="test", environ=environ(tmp_path))
    assert cfg.sources()["SECRET_KEY"] == "config file test.yaml"
    assert cfg.get("database.port") == 5432
    assert cfg.get("database.nope", default="d") == "d"
    assert cfg.get("nope.deeper") is None
    assert cfg["database"] == {"host": "db", "port": 5432}
    assert "database" in cfg and "nope" not in cfg
    assert cfg["flags"] == ["a", "b"]
    with pytest.raises(KeyError):
        cfg["nope"]
    assert cfg.environment == "test"


def test_as_dict_masks_secrets_and_repr_shows_none(tmp_path: Path, canary: str) -> None:
    """as_dict() masks the six secrets, resolved values and credential-named keys; repr hides."""
    write(
        tmp_path,
        "test.yaml",
        "database: {host: db}\nmail:\n  smtp: vault:secret/data/mail#password\n"
        f"  api_token: {canary}-tok\n",
    )
    env = environ(tmp_path, SECRET_KEY=canary + "-key", DB_PASSWORD=canary + "-db")
    manager, _ = manager_with(env, {"secret/data/mail": {"password": canary + "-mail"}})
    cfg = SecureConfigManager(tmp_path, env="test", environ=env, manager=manager)
    masked = cfg.as_dict()
    assert masked["security"]["secret_key"] == MASK
    assert masked["database"] == {"host": "db", "password": MASK}
    assert masked["mail"] == {"smtp": MASK, "api_token": MASK}
    assert canary not in repr(masked)
    revealed = cfg.as_dict(reveal=True)
    assert revealed["mail"]["smtp"] == canary + "-mail"
    assert revealed["database"]["password"] == canary + "-db"
    for text in (repr(cfg), str(cfg), repr(cfg["database"]), repr(cfg["mail"]), str(cfg.sources())):
        assert canary not in text


def test_reload_reads_files_and_secrets_again(tmp_path: Path) -> None:
    """reload() picks up a changed file and a rotated secret; a broken file keeps the old state."""
    write(
        tmp_path, "test.yaml", "app: {port: 1}\ndatabase: {password: 'vault:secret/data/db#pw'}\n"
    )
    env = environ(tmp_path, SECRET_KEY=STRONG)
    manager, vault = manager_with(env, {"secret/data/db": {"pw": "old-password"}})
    cfg = SecureConfigManager(tmp_path, env="test", environ=env, manager=manager)
    vault.data["secret/data/db"] = {"pw": "new-password"}
    write(
        tmp_path, "test.yaml", "app: {port: 2}\ndatabase: {password: 'vault:secret/data/db#pw'}\n"
    )
    cfg.reload()
    assert cfg.get("app.port") == 2
    assert cfg.get("database.password") == "new-password"
    write(tmp_path, "test.yaml", "app: [\n")
    with pytest.raises(ConfigurationError):
        cfg.reload()
    assert cfg.get("app.port") == 2


def test_config_manager_resolves_only_the_six_secrets(tmp_path: Path) -> None:
    """ConfigManager obtains the six secrets (references too) and leaves other references alone."""
    write(
        tmp_path,
        "test.yaml",
        "database: {password: 'vault:secret/data/db#password'}\n"
        "mail: {smtp: 'vault:secret/data/mail#password'}\n",
    )
    env = environ(tmp_path, SECRET_KEY=STRONG)
    manager, vault = manager_with(env, {"secret/data/db": {"password": "pw-from-vault"}})
    cfg = ConfigManager(tmp_path, env="test", environ=env, manager=manager)
    assert cfg.get("database.password") == "pw-from-vault"
    assert cfg.sources()["DB_PASSWORD"] == "vault secret/data/db#password"
    assert cfg.get("mail.smtp") == "vault:secret/data/mail#password"
    assert vault.calls == 1


def test_missing_reference_of_required_secret_names_it(tmp_path: Path) -> None:
    """Even the plain ConfigManager refuses production when DB_PASSWORD's reference fails."""
    write(tmp_path, "production.yaml", "database: {password: 'vault:secret/data/db#password'}\n")
    env = environ(tmp_path, SECRET_KEY=STRONG, **AUTH0)
    manager, _ = manager_with(env)
    with pytest.raises(ValidationError) as info:
        ConfigManager(tmp_path, environ=env, manager=manager)
    assert "DB_PASSWORD" in str(info.value)


def test_references_read_each_path_once(tmp_path: Path) -> None:
    """Six references over two paths cost two backend reads, and every field lands."""
    write(
        tmp_path,
        "test.yaml",
        "database: {password: 'vault:secret/data/db#password', user: 'vault:secret/data/db#user'}\n"
        "auth0:\n"
        + "".join(
            f"  {k}: 'vault:secret/data/auth0#{k}'\n"
            for k in ("client_id", "client_secret", "domain", "audience")
        ),
    )
    env = environ(tmp_path, SECRET_KEY=STRONG)
    manager, vault = manager_with(
        env,
        {
            "secret/data/db": {"password": "pw-1", "user": "app"},
            "secret/data/auth0": {
                "client_id": "cid",
                "client_secret": "csecret",
                "domain": "d.auth0.com",
                "audience": "aud",
            },
        },
    )
    cfg = SecureConfigManager(tmp_path, env="test", environ=env, manager=manager)
    assert vault.calls == 2
    assert cfg.get("database.user") == "app"
    assert cfg.get("auth0.domain") == "d.auth0.com"
    assert cfg.sources()["AUTH0_DOMAIN"] == "vault secret/data/auth0#domain"


class _Rendezvous(MemoryBackend):
    """A backend whose reads wait for each other: they finish only if all run at the same time."""

    def __init__(self, data: dict[str, Any], parties: int) -> None:
        super().__init__(data, name="vault")
        # Generous: read one after another, the first waits this long for the others, in vain.
        self.barrier = threading.Barrier(parties, timeout=30)
        self.alone = False

    def fetch(self, path: str) -> Fetched:
        """Wait until every other read has begun too, then read."""
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            self.alone = True
        return super().fetch(path)


def test_paths_are_read_concurrently(tmp_path: Path) -> None:
    """Four paths are read at the same time, not one after another."""
    write(
        tmp_path,
        "test.yaml",
        "svc:\n" + "".join(f"  k{i}: 'vault:secret/data/p{i}#v'\n" for i in range(4)),
    )
    env = environ(tmp_path, SECRET_KEY=STRONG)
    manager = SecretManager("env", environ=env)
    vault = _Rendezvous({f"secret/data/p{i}": {"v": f"val{i}"} for i in range(4)}, parties=4)
    manager.add_backend(vault)
    cfg = SecureConfigManager(tmp_path, env="test", environ=env, manager=manager)
    assert not vault.alone, "a read waited for the others in vain: the paths were read in turn"
    assert vault.calls == 4
    assert cfg.get("svc.k3") == "val3"


def test_env_and_file_references(tmp_path: Path) -> None:
    """env: and file: references resolve through the env and file backends."""
    secret_file = write(tmp_path, "token.txt", "file-token-value\n")
    write(
        tmp_path / "conf",
        "test.yaml",
        f"svc: {{a: 'env:SVC_A', b: 'file:{secret_file}'}}\n",
    )
    env = environ(tmp_path, SECRET_KEY=STRONG, SVC_A="from-env-a")
    cfg = SecureConfigManager(tmp_path / "conf", env="test", environ=env)
    assert cfg.get("svc.a") == "from-env-a"
    assert cfg.get("svc.b") == "file-token-value"


def test_every_failure_is_reported_together(tmp_path: Path, canary: str) -> None:
    """Missing path and field, a failing store, a bad token, a bad reference: one error."""
    other_key = Fernet.generate_key().decode()
    bad_token = Fernet(other_key.encode()).encrypt(canary.encode()).decode()
    write(
        tmp_path,
        "production.yaml",
        "database: {password: 'vault:secret/data/nope#password'}\n"
        "auth0:\n"
        "  client_id: 'vault:secret/data/auth0#client_id'\n"
        "  client_secret: 'vault:secret/data/auth0#missing_field'\n"
        "  domain: 'aws-secrets:prod/auth0_domain'\n"
        "  audience: 'vault:#x'\n"
        f"mail: {{password: 'enc:{bad_token}'}}\n",
    )
    env = environ(tmp_path, SECRET_KEY=STRONG, FERNET_KEY=Fernet.generate_key().decode())
    manager, _ = manager_with(env, {"secret/data/auth0": {"client_id": canary + "-id"}})
    aws = MemoryBackend(name="aws")
    aws.failing = True
    manager.add_backend(aws)
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(tmp_path, env="production", environ=env, manager=manager)
    message = str(info.value)
    assert len(info.value.problems) == 5
    assert "database.password (DB_PASSWORD): reference vault:secret/data/nope#password" in message
    assert "backend vault" in message
    assert "auth0.client_secret (AUTH0_CLIENT_SECRET)" in message
    assert "missing_field" in message
    assert "auth0.domain (AUTH0_DOMAIN): reference aws-secrets:prod/auth0_domain" in message
    assert "backend aws" in message and "failing" in message
    assert "auth0.audience (AUTH0_AUDIENCE)" in message
    assert "mail.password: encrypted value in config file production.yaml" in message
    assert "FERNET_KEY" in message
    assert canary not in message
    assert bad_token not in message


def test_fernet_values_in_yaml_and_store_decrypt_with_either_key(tmp_path: Path) -> None:
    """enc: and bare tokens in the YAML, and tokens in the store, decrypt with old or new key."""
    old, new = Fernet.generate_key(), Fernet.generate_key()
    by_old = Fernet(old).encrypt(b"db-password-old-key").decode()
    by_new = Fernet(new).encrypt(b"client-secret-new-key").decode()
    write(
        tmp_path,
        "test.yaml",
        f"database: {{password: 'enc:{by_old}'}}\nauth0: {{client_secret: '{by_new}'}}\n"
        "security: {secret_key: 'vault:secret/data/app#key'}\n",
    )
    env = environ(tmp_path, FERNET_KEY=f"{new.decode()},{old.decode()}")
    stored = Fernet(old).encrypt(STRONG.encode()).decode()
    manager, _ = manager_with(env, {"secret/data/app": {"key": stored}})
    cfg = SecureConfigManager(tmp_path, env="test", environ=env, manager=manager)
    assert cfg.get("database.password") == "db-password-old-key"
    assert cfg.get("auth0.client_secret") == "client-secret-new-key"
    assert cfg.get("security.secret_key") == STRONG
    assert cfg.sources()["DB_PASSWORD"] == "config file test.yaml (encrypted)"


def test_encrypted_value_without_fernet_key_names_the_key(tmp_path: Path) -> None:
    """An encrypted value and no FERNET_KEY is an error naming the configuration key."""
    token = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    write(tmp_path, "test.yaml", f"database: {{password: '{token}'}}\n")
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(tmp_path, env="test", environ=environ(tmp_path, SECRET_KEY=STRONG))
    assert "database.password (DB_PASSWORD)" in str(info.value)
    assert "FERNET_KEY is not set" in str(info.value)


def test_logs_carry_no_value(
    tmp_path: Path, canary: str, root_logger_capture: list[str], fresh_redaction: None
) -> None:
    """Loading logs files and statuses, never a value."""
    write(tmp_path, "test.yaml", "database: {password: 'vault:secret/data/db#pw'}\n")
    env = environ(tmp_path, SECRET_KEY=canary + "-key-that-is-long-enough-xyz")
    manager, _ = manager_with(env, {"secret/data/db": {"pw": canary}})
    SecureConfigManager(tmp_path, env="test", environ=env, manager=manager)
    assert root_logger_capture
    assert not any(canary in line for line in root_logger_capture)


def test_failing_default_backend_is_reported_per_secret(tmp_path: Path) -> None:
    """When the default backend fails, each secret to fill from it is a problem naming it."""
    backend = MemoryBackend({"SECRET_KEY": STRONG})
    backend.failing = True
    with pytest.raises(ValidationError) as info:
        ConfigManager(
            tmp_path, env="test", environ=environ(tmp_path), manager=SecretManager(backend)
        )
    message = str(info.value)
    assert (
        "security.secret_key (SECRET_KEY): reading 'SECRET_KEY' from the memory backend" in message
    )
    assert "failing" in message


def test_encrypted_environment_variable_is_decrypted(tmp_path: Path) -> None:
    """A secret's variable holding a token is decrypted, and a token elsewhere left alone."""
    key = Fernet.generate_key()
    token = Fernet(key).encrypt(b"db-from-env-encrypted").decode()
    write(tmp_path, "test.yaml", f"mail: {{password: '{token}'}}\n")
    env = environ(tmp_path, SECRET_KEY=STRONG, DB_PASSWORD="enc:" + token, FERNET_KEY=key.decode())
    cfg = ConfigManager(tmp_path, env="test", environ=env)
    assert cfg.get("database.password") == "db-from-env-encrypted"
    assert cfg.sources()["DB_PASSWORD"] == "env DB_PASSWORD (encrypted)"
    assert cfg.get("mail.password") == token
