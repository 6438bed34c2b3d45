"""Start-up validation: environments, required secrets, weak keys, all problems at once."""

from __future__ import annotations

from pathlib import Path

import config as root_config
import pytest

from yosai_secrets.config import ConfigManager, SecureConfigManager
from yosai_secrets.config.validate import secret_key_weakness
from yosai_secrets.errors import ConfigurationError, ValidationError
from yosai_secrets.manager import SecretManager
from yosai_secrets.testing import MemoryBackend

REPO_ROOT = Path(__file__).resolve().parent.parent
STRONG = "Zq8vN2kP5tR7wY1aB4cD6eF9gH3jK0mLxQ"
PRODUCTION = {
    "SECRET_KEY": STRONG,
    "DB_PASSWORD": "db-password-123",
    "AUTH0_CLIENT_ID": "client-id",
    "AUTH0_CLIENT_SECRET": "client-secret",
    "AUTH0_DOMAIN": "tenant.auth0.com",
    "AUTH0_AUDIENCE": "https://api",
}


@pytest.fixture
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty configuration directory, run from a directory without development secrets."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "conf"
    folder.mkdir()
    return folder


def env_of(tmp_path: Path, **values: str) -> dict[str, str]:
    """An isolated environment dict."""
    return {"SECRETS_DIR": str(tmp_path / "run-secrets"), **values}


def test_unset_yosai_env_means_production(empty_dir: Path, tmp_path: Path) -> None:
    """Without YOSAI_ENV the production rules apply: DB_PASSWORD is demanded by name."""
    with pytest.raises(ValidationError) as info:
        ConfigManager(empty_dir, environ=env_of(tmp_path, SECRET_KEY=STRONG))
    assert "DB_PASSWORD is required in production" in str(info.value)


def test_unknown_environment_is_refused(empty_dir: Path, tmp_path: Path) -> None:
    """YOSAI_ENV must be one of the four environments; the message lists them."""
    with pytest.raises(ConfigurationError, match="development, test, staging, production"):
        ConfigManager(empty_dir, environ=env_of(tmp_path, YOSAI_ENV="prod", SECRET_KEY=STRONG))
    with pytest.raises(ConfigurationError, match="not known"):
        ConfigManager(empty_dir, env="qa", environ=env_of(tmp_path, SECRET_KEY=STRONG))


def test_production_reports_every_problem_at_once(empty_dir: Path, tmp_path: Path) -> None:
    """Missing DB_PASSWORD and AUTH0_* and a weak SECRET_KEY are reported together."""
    with pytest.raises(ValidationError) as info:
        ConfigManager(
            empty_dir, environ=env_of(tmp_path, YOSAI_ENV="production", SECRET_KEY="changeme")
        )
    message = str(info.value)
    assert len(info.value.problems) == 6
    for name in ("DB_PASSWORD", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "AUTH0_DOMAIN"):
        assert f"{name} is required in production" in message
    assert "SECRET_KEY (from env SECRET_KEY) is too weak" in message
    assert "changeme" not in message.replace("'changeme'", "")


def test_production_with_all_six_strong_passes(empty_dir: Path, tmp_path: Path) -> None:
    """All six secrets present and a strong key: production starts."""
    cfg = ConfigManager(empty_dir, environ=env_of(tmp_path, YOSAI_ENV="production", **PRODUCTION))
    assert cfg.environment == "production"
    assert set(cfg.sources().values()) == {f"env {n}" for n in PRODUCTION}


@pytest.mark.parametrize("env", ["development", "test", "staging"])
def test_other_environments_need_only_secret_key(empty_dir: Path, tmp_path: Path, env: str) -> None:
    """Outside production only SECRET_KEY is required, and any non-empty one will do."""
    cfg = ConfigManager(empty_dir, environ=env_of(tmp_path, YOSAI_ENV=env, SECRET_KEY="dev"))
    assert cfg.sources()["DB_PASSWORD"] == "missing"
    with pytest.raises(ValidationError, match="SECRET_KEY is required in"):
        ConfigManager(empty_dir, environ=env_of(tmp_path, YOSAI_ENV=env))


def test_validate_false_skips_the_rules(empty_dir: Path, tmp_path: Path) -> None:
    """validate=False builds the configuration even with production secrets missing."""
    cfg = ConfigManager(empty_dir, validate=False, environ=env_of(tmp_path))
    assert cfg.environment == "production"
    assert cfg.get("security.secret_key") is None


@pytest.mark.parametrize(
    "value",
    [
        "dev",
        "changeme",
        "secret",
        "CHANGE-ME",
        "changeme-changeme-changeme-changeme",
        "devdevdevdevdevdevdevdevdevdevdevdev",
        "short-but-random-K3y",
        "please-replace-me-with-a-real-key-0123",
    ],
)
def test_weak_secret_keys(value: str) -> None:
    """Placeholders, repetitions and short keys are weak."""
    assert secret_key_weakness(value) is not None


def test_generated_secret_key_is_strong() -> None:
    """A key from secrets.token_urlsafe(48) passes."""
    import secrets

    assert secret_key_weakness(secrets.token_urlsafe(48)) is None


def test_root_config_package_reexports() -> None:
    """`from config import ...` gives the documented names."""
    assert root_config.SecureConfigManager is SecureConfigManager
    assert root_config.ConfigManager is ConfigManager
    assert root_config.ConfigurationError is ConfigurationError
    assert sorted(root_config.__all__) == [
        "ConfigManager",
        "ConfigurationError",
        "SecureConfigManager",
    ]


def test_repository_production_yaml_reads_the_default_backend() -> None:
    """production.yaml reads secret:NAME references and documents each backend's layout."""
    text = (REPO_ROOT / "config" / "production.yaml").read_text()
    assert "  password: secret:DB_PASSWORD\n" in text
    assert "  user: secret:DB_USER\n" in text
    for documented in ("VAULT_SECRETS_PATH", "DB_CREDENTIALS", "SECRET_NAME_PREFIX", "SECRETS_DIR"):
        assert documented in text


def test_repository_production_yaml_resolves_from_the_default_backend(tmp_path: Path) -> None:
    """The shipped production.yaml reads each secret and DB_USER from SECRET_BACKEND's store."""
    env = env_of(tmp_path, YOSAI_ENV="production")
    store = MemoryBackend({**PRODUCTION, "DB_USER": "app_b"}, name="vault")
    cfg = SecureConfigManager(
        REPO_ROOT / "config", environ=env, manager=SecretManager(store, environ=env)
    )
    assert cfg.get("database.password") == "db-password-123"
    assert cfg.get("database.user") == "app_b"
    assert cfg.sources()["SECRET_KEY"] == "vault SECRET_KEY"
    del store.data["DB_PASSWORD"]
    with pytest.raises(ValidationError, match="DB_PASSWORD"):
        _fresh(env, store)


def test_db_user_follows_its_variable_like_the_password(tmp_path: Path) -> None:
    """DB_USER in the environment overrides the store, as DB_PASSWORD does: one pair, one place."""
    env = env_of(tmp_path, YOSAI_ENV="production", DB_USER="app_env", DB_PASSWORD="pw-env")
    store = MemoryBackend({**PRODUCTION, "DB_USER": "app_store"}, name="vault")
    cfg = SecureConfigManager(
        REPO_ROOT / "config", environ=env, manager=SecretManager(store, environ=env)
    )
    assert (cfg.get("database.user"), cfg.get("database.password")) == ("app_env", "pw-env")


def test_a_plain_configuration_manager_resolves_db_user_too(tmp_path: Path) -> None:
    """ConfigManager leaves references as text, but DB_USER is resolved with the six secrets."""
    env = env_of(tmp_path, YOSAI_ENV="production")
    store = MemoryBackend({**PRODUCTION, "DB_USER": "app_b"}, name="vault")
    cfg = ConfigManager(
        REPO_ROOT / "config", environ=env, manager=SecretManager(store, environ=env)
    )
    assert cfg.get("database.user") == "app_b"


def test_secret_references_wait_for_a_broken_default_backend(tmp_path: Path) -> None:
    """SECRET_BACKEND=vault without VAULT_ADDR: one problem; secret: is never read from env."""
    env = env_of(
        tmp_path, YOSAI_ENV="production", SECRET_BACKEND="vault", DB_USER="x", **PRODUCTION
    )
    del env["DB_PASSWORD"]
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(REPO_ROOT / "config", environ=env)
    message = str(info.value)
    assert len(info.value.problems) == 1  # one cause, one line naming every key
    assert (
        "database.password (DB_PASSWORD): reference secret:DB_PASSWORD (backend vault)" in message
    )
    assert "VAULT_ADDR" in message
    assert "(backend env)" not in message


def _fresh(env: dict[str, str], store: MemoryBackend) -> SecureConfigManager:
    """Load the repository's configuration with a new manager over ``store``."""
    return SecureConfigManager(
        REPO_ROOT / "config", environ=env, manager=SecretManager(store, environ=env)
    )


def test_placeholders_are_not_set_in_production(tmp_path: Path) -> None:
    """The example's replace-me-* values are refused in production, named, never shown."""
    values = {**PRODUCTION, "AUTH0_CLIENT_SECRET": "replace-me-auth0-client-secret"}
    values["SECRET_KEY"] = "Replace-Me-secret-key-" + "q" * 40
    env = env_of(tmp_path, YOSAI_ENV="production", DB_USER="app", **values)
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(REPO_ROOT / "config", environ=env)
    message = str(info.value)
    assert "AUTH0_CLIENT_SECRET is required in production but is not set" in message
    assert "SECRET_KEY is required in production but is not set" in message
    assert "placeholder" in message
    assert "replace-me-auth0" not in message.lower() and "q" * 40 not in message
    assert "too weak" not in message  # one problem per key


def test_repository_development_yaml_loads(tmp_path: Path) -> None:
    """development.yaml loads with SECRET_KEY from the environment and no secret store."""
    env = env_of(tmp_path, YOSAI_ENV="development", SECRET_KEY=STRONG)
    cfg = SecureConfigManager(REPO_ROOT / "config", environ=env)
    assert cfg.get("app.debug") is True
    assert cfg.get("database.host") == "localhost"


def test_strength_needs_length_and_entropy() -> None:
    """A random 32-character key is strong enough; 32 bytes of one character are not (issue 12)."""
    import secrets

    assert secret_key_weakness(secrets.token_urlsafe(24)) is None
    assert secret_key_weakness("x" * 32) is not None
    assert secret_key_weakness(secrets.token_urlsafe(23)) is not None  # 31 characters
