"""The shipped configuration reads exactly what rotation writes, for every kind of store.

Each case writes new values through the store ``yosai-secrets rotate`` opens (``open_store`` from
the environment; prepare, stage and promote, as the engine calls them), gives the database role its
new password in the suite's real PostgreSQL, then starts the configuration exactly as the service
does in production (``SecureConfigManager`` on the repository's ``config/`` with
``YOSAI_ENV=production`` and the backend's variables) and logs in to PostgreSQL with the database
user and password it resolved. Both rotation modes are covered: alternating users (``DB_USER``
switches with the password) and a single role (only ``DB_PASSWORD`` changes).

With ``SECRET_BACKEND=env`` the store is the Kubernetes manifest, whose values reach the pods as
environment variables: the case gives the new values to the environment, as a restarted pod sees
them. The rotation engine is exercised elsewhere; this module pins the store and the
configuration to one another.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.moto import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, MotoServer
from tests.servers.openbao import OpenBaoServer
from tests.test_rotation_postgres import can_login
from yosai_secrets.config import SecureConfigManager
from yosai_secrets.errors import ValidationError
from yosai_secrets.manager import SecretManager
from yosai_secrets.rotation.stores import open_store

REPO_ROOT = Path(__file__).resolve().parent.parent
STAMP = "2026-11-29T10:00:00Z"
AUTH0 = {
    "AUTH0_CLIENT_ID": "client-id-0123456789",
    "AUTH0_CLIENT_SECRET": "client-secret-" + "s" * 32,
    "AUTH0_DOMAIN": "tenant.eu.auth0.com",
    "AUTH0_AUDIENCE": "https://api.yosai.test",
}


def _key() -> str:
    return secrets.token_urlsafe(48)


def _admin(postgres: Any) -> Any:
    import psycopg

    return psycopg.connect(postgres.dsn(), autocommit=True)


def _make_role(postgres: Any) -> tuple[str, str]:
    """A new login role with a random password."""
    from psycopg import sql

    name = "app_" + uuid.uuid4().hex[:10]
    password = secrets.token_urlsafe(24)
    with _admin(postgres) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    return name, password


def _set_password(postgres: Any, role: str, password: str) -> None:
    """Give ``role`` a new password (the rotation's db-set step, done directly)."""
    from psycopg import sql

    with _admin(postgres) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )


class Rotation:
    """One rotation's old and new values, as the engine plans them, and the roles behind them."""

    def __init__(self, postgres: Any, mode: str) -> None:
        self.mode = mode
        role_a, pw_a = _make_role(postgres)
        self.old = {"SECRET_KEY": _key(), "SECRET_KEY_FALLBACKS": "[]", "DB_PASSWORD": pw_a}
        new_key = _key()
        self.new = {
            "SECRET_KEY": new_key,
            "SECRET_KEY_FALLBACKS": json.dumps([self.old["SECRET_KEY"]]),
            "DB_PASSWORD": secrets.token_urlsafe(32),
        }
        self.user_before = self.user_after = role_a
        if mode == "alternating":
            role_b, _ = _make_role(postgres)
            self.old["DB_USER"], self.new["DB_USER"] = role_a, role_b
            self.user_after = role_b
        self.postgres = postgres

    @property
    def before(self) -> dict[str, str]:
        """Every setting the service reads, before the rotation."""
        return {**AUTH0, "DB_USER": self.user_before, **self.old}

    @property
    def after(self) -> dict[str, str]:
        """Every setting the service reads, after the rotation."""
        return {**self.before, **self.new}

    def run(self, environ: dict[str, str]) -> None:
        """The database gets its new password, then the store its new values (engine order)."""
        _set_password(self.postgres, self.user_after, self.new["DB_PASSWORD"])
        store = open_store(environ)
        try:
            state: dict[str, Any] = {"backend": store.name}
            store.prepare(state, self.old)
            store.stage(state, self.new)
            store.promote(state, self.new, STAMP)
        finally:
            close = getattr(getattr(store, "backend", None), "close", None)
            if callable(close):
                close()


def start_service(environ: dict[str, str]) -> tuple[str, str, str]:
    """Load the shipped configuration as production does: (db user, db password, secret key)."""
    # The test's own (empty) Docker secrets directory, never the machine's /run/secrets.
    env = {"YOSAI_ENV": "production", "SECRETS_DIR": os.environ["SECRETS_DIR"], **environ}
    manager = SecretManager(environ=env)
    try:
        cfg = SecureConfigManager(REPO_ROOT / "config", environ=env, manager=manager)
        return (
            cfg.get("database.user"),
            cfg.get("database.password"),
            cfg.get("security.secret_key"),
        )
    finally:
        manager.close()


def assert_logs_in(postgres: Any, environ: dict[str, str], expected: dict[str, str]) -> None:
    """The service resolves ``expected``'s credentials and PostgreSQL accepts them."""
    user, password, key = start_service(environ)
    assert (user, password, key) == (
        expected["DB_USER"],
        expected["DB_PASSWORD"],
        expected["SECRET_KEY"],
    )
    assert can_login(postgres, user, password)


MODES = ["alternating", "single"]


@pytest.mark.parametrize("mode", MODES)
def test_env_store(postgres: Any, tmp_path: Path, mode: str) -> None:
    """SECRET_BACKEND=env: the pods' variables before and after a rotation log the app in."""
    rotation = Rotation(postgres, mode)
    base = {"SECRET_BACKEND": "env", "SECRETS_DIR": str(tmp_path / "run-secrets")}
    assert_logs_in(postgres, {**base, **rotation.before}, rotation.before)
    rotation.run(base)
    assert_logs_in(postgres, {**base, **rotation.after}, rotation.after)


def test_env_store_reads_docker_secret_files(postgres: Any, tmp_path: Path) -> None:
    """SECRET_BACKEND=env with Docker secret files only (no variables): the app logs in."""
    rotation = Rotation(postgres, "alternating")
    rotation.run({"SECRET_BACKEND": "env"})
    directory = tmp_path / "run-secrets"
    directory.mkdir()
    for name, value in rotation.after.items():
        (directory / name.lower()).write_text(value + "\n")
    assert_logs_in(postgres, {"SECRETS_DIR": str(directory)}, rotation.after)


@pytest.fixture
def vault_environ(openbao: OpenBaoServer) -> dict[str, str]:
    """SECRET_BACKEND=vault at a fresh VAULT_SECRETS_PATH (the shipped file names no path)."""
    return {
        "SECRET_BACKEND": "vault",
        "VAULT_ADDR": openbao.addr,
        "VAULT_TOKEN": openbao.token,
        "VAULT_SECRETS_PATH": f"secret/data/shipped-{uuid.uuid4().hex[:10]}",
    }


@pytest.mark.parametrize("mode", MODES)
def test_vault_store(
    postgres: Any, openbao: OpenBaoServer, vault_environ: dict[str, str], mode: str
) -> None:
    """SECRET_BACKEND=vault: the app logs in with the fields rotation wrote (VAULT_SECRETS_PATH)."""
    rotation = Rotation(postgres, mode)
    openbao.api("PUT", vault_environ["VAULT_SECRETS_PATH"], {"data": rotation.before})
    assert_logs_in(postgres, vault_environ, rotation.before)
    rotation.run(vault_environ)
    assert_logs_in(postgres, vault_environ, rotation.after)


@pytest.fixture
def aws_environ(moto_server: MotoServer) -> Iterator[dict[str, str]]:
    """SECRET_BACKEND=aws on the emulator, under a fresh SECRET_NAME_PREFIX."""
    yield {
        "SECRET_BACKEND": "aws",
        "SECRET_NAME_PREFIX": f"shipped-{uuid.uuid4().hex[:10]}/",
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": moto_server.region,
    }


def _seed_aws(client: Any, prefix: str, values: dict[str, str]) -> None:
    """One secret per setting; the database user and password as one JSON secret."""
    pair = {"username": values["DB_USER"], "password": values["DB_PASSWORD"]}
    client.create_secret(Name=prefix + "DB_CREDENTIALS", SecretString=json.dumps(pair))
    for name, value in values.items():
        if name not in ("DB_USER", "DB_PASSWORD"):
            client.create_secret(Name=prefix + name, SecretString=value)


@pytest.mark.parametrize("mode", MODES)
def test_aws_store(
    postgres: Any, moto_server: MotoServer, aws_environ: dict[str, str], mode: str
) -> None:
    """SECRET_BACKEND=aws: the app logs in with the DB_CREDENTIALS version rotation promoted."""
    rotation = Rotation(postgres, mode)
    client = moto_server.client()
    prefix = aws_environ["SECRET_NAME_PREFIX"]
    _seed_aws(client, prefix, rotation.before)
    assert_logs_in(postgres, aws_environ, rotation.before)
    rotation.run(aws_environ)
    assert_logs_in(postgres, aws_environ, rotation.after)
    pair = json.loads(
        client.get_secret_value(SecretId=prefix + "DB_CREDENTIALS", VersionStage="AWSCURRENT")[
            "SecretString"
        ]
    )
    assert pair == {"username": rotation.user_after, "password": rotation.new["DB_PASSWORD"]}


def test_aws_store_creates_the_credentials_secret(
    postgres: Any, moto_server: MotoServer, aws_environ: dict[str, str]
) -> None:
    """A store without DB_CREDENTIALS gets it from the old pair, then the new pair logs in."""
    rotation = Rotation(postgres, "alternating")
    client = moto_server.client()
    prefix = aws_environ["SECRET_NAME_PREFIX"]
    for name, value in AUTH0.items():
        client.create_secret(Name=prefix + name, SecretString=value)
    rotation.run(aws_environ)
    assert_logs_in(postgres, aws_environ, rotation.after)
    previous = client.get_secret_value(
        SecretId=prefix + "DB_CREDENTIALS", VersionStage="AWSPREVIOUS"
    )
    assert json.loads(previous["SecretString"]) == {
        "username": rotation.user_before,
        "password": rotation.old["DB_PASSWORD"],
    }


def test_the_shipped_file_uses_backend_neutral_references() -> None:
    """production.yaml reads every secret and the database user with secret:NAME, nothing else."""
    import yaml

    data = yaml.safe_load((REPO_ROOT / "config" / "production.yaml").read_text())
    assert data["database"]["user"] == "secret:DB_USER"
    assert data["database"]["password"] == "secret:DB_PASSWORD"
    assert data["security"]["secret_key"] == "secret:SECRET_KEY"
    assert data["auth0"] == {
        "client_id": "secret:AUTH0_CLIENT_ID",
        "client_secret": "secret:AUTH0_CLIENT_SECRET",
        "domain": "secret:AUTH0_DOMAIN",
        "audience": "secret:AUTH0_AUDIENCE",
    }


def test_without_db_user_the_shipped_file_refuses_to_start(tmp_path: Path) -> None:
    """No DB_USER anywhere: production refuses to start and names database.user (DB_USER)."""
    environ = {
        "SECRETS_DIR": str(tmp_path / "run-secrets"),
        **AUTH0,
        "SECRET_KEY": _key(),
        "DB_PASSWORD": "pw-" + uuid.uuid4().hex,
    }
    with pytest.raises(ValidationError, match=r"database\.user \(DB_USER\)") as info:
        start_service(environ)
    assert environ["DB_PASSWORD"] not in str(info.value)
