"""Alternating users with a secret store: pods that read the store log in through five cycles.

Each pod is a thread with its own ``SecretManager`` reading ``DB_USER`` and ``DB_PASSWORD`` from the
store (OpenBao, or the AWS emulator where the pair is one JSON secret) through a short cache, as a
service calling ``get_secret`` does, and logs in to the real PostgreSQL every 20 ms. Five times:
``rotate`` (the idle role gets the new password; the store's current version moves), then, once
every pod has read the new version, ``rotate --finish --now``. The cluster is the kubectl
stand-in (no Kubernetes API server can run here).
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.servers.moto import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY
from yosai_secrets.cli import cli
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.manager import SecretManager

from .rotation_cluster import stub_cluster
from .rotation_support import make_manifest, values
from .test_rotation_delivery import _role

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OLD_KEY = "old-signing-key-" + "y" * 40
TTL_SECONDS = 0.3


class StorePods:
    """Threads logging in with what ``get_secret`` reads from the store at each login."""

    def __init__(self, postgres: Any, environ: dict[str, str], threads: int = 16) -> None:
        self.postgres, self.environ = postgres, environ
        self.ok = self.failed = 0
        self.reasons: dict[str, int] = {}
        self.store_errors = self.stale_serves = 0
        self.phase = "start"
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._pod, daemon=True) for _ in range(threads)]

    def _pod(self) -> None:
        import psycopg

        manager = SecretManager(environ=self.environ, ttl_seconds=TTL_SECONDS)
        while not self.stop.is_set():
            try:
                got = manager.get_many(["DB_USER", "DB_PASSWORD"])
                user, password = got["DB_USER"], got["DB_PASSWORD"]
                for got_value in (user, password):
                    if isinstance(got_value, ConfigurationError):
                        raise psycopg.OperationalError(f"store: {type(got_value).__name__}")
                dsn = self.postgres.dsn(user=user, password=password)
                with psycopg.connect(dsn) as conn:
                    conn.execute("SELECT 1")
                reason = ""
            except psycopg.OperationalError as exc:
                text = str(exc)
                reason = text if text.startswith("store:") else "login: " + text.split(":")[-1][:60]
            with self.lock:
                self.ok += not reason
                self.failed += bool(reason)
                if reason:
                    reason = f"{self.phase}: {reason}"
                    self.reasons[reason] = self.reasons.get(reason, 0) + 1
            time.sleep(0.02)
        stats = manager.stats()
        with self.lock:
            self.store_errors += stats.errors
            self.stale_serves += stats.stale_serves
        manager.close()

    def settle(self) -> None:
        """Wait until every pod's cache has expired twice and 100 more logins happened."""
        with self.lock:
            target = self.ok + self.failed + 100
        time.sleep(TTL_SECONDS * 2 + 0.1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with self.lock:
                if self.ok + self.failed >= target:
                    return
            time.sleep(0.01)
        raise AssertionError("the pods stopped logging in")

    def __enter__(self) -> StorePods:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def _vault(openbao: Any, role: str, password: str) -> dict[str, str]:
    path = f"secret/data/{'cycles-' + uuid.uuid4().hex[:8]}"
    fields = {"SECRET_KEY": OLD_KEY, "SECRET_KEY_FALLBACKS": "[]", "DB_USER": role}
    openbao.api("PUT", path, {"data": {**fields, "DB_PASSWORD": password}})
    return {
        "SECRET_BACKEND": "vault",
        "VAULT_ADDR": openbao.addr,
        "VAULT_TOKEN": openbao.token,
        "VAULT_SECRETS_PATH": path,
    }


def _aws(moto_server: Any, role: str, password: str) -> dict[str, str]:
    import json

    prefix = f"cycles-{uuid.uuid4().hex[:8]}/"
    client = moto_server.client()
    client.create_secret(Name=prefix + "SECRET_KEY", SecretString=OLD_KEY)
    client.create_secret(Name=prefix + "SECRET_KEY_FALLBACKS", SecretString="[]")
    pair = json.dumps({"username": role, "password": password})
    client.create_secret(Name=prefix + "DB_CREDENTIALS", SecretString=pair)
    return {
        "SECRET_BACKEND": "aws",
        "SECRET_NAME_PREFIX": prefix,
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": moto_server.region,
    }


@pytest.mark.parametrize("store", ["vault", "aws"])
def test_five_alternating_cycles_with_a_store_fail_no_login(
    store: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    postgres: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Five rotate/finish cycles of alternating users through a store: 0 failed logins."""
    role_a, password = _role(postgres)
    if store == "vault":
        environ = _vault(request.getfixturevalue("openbao"), role_a, password)
    else:
        environ = _aws(request.getfixturevalue("moto_server"), role_a, password)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ROTATION_DATABASE_URL", postgres.url())
    path = make_manifest(tmp_path, SECRET_KEY=OLD_KEY, DB_USER=role_a, DB_PASSWORD=password)
    stub_cluster(tmp_path, monkeypatch, path)
    runner = CliRunner()

    def run(*args: str) -> None:
        result = runner.invoke(cli, ["rotate", "--manifest", str(path), *args])
        assert result.exit_code == 0, result.output

    run("--setup-alternating")
    role_b = role_a + "_b"
    with StorePods(postgres, environ) as pods:
        pods.settle()
        for cycle in range(5):
            pods.phase = f"rotate {cycle}"
            run("--db-users", f"{role_a},{role_b}")
            pods.phase = f"after rotate {cycle}"
            pods.settle()
            pods.phase = f"finish {cycle}"
            run("--finish", "--now")
            pods.phase = f"after finish {cycle}"
            pods.settle()
    print(
        f"\n{store} store, alternating users, 16 pods, 5 cycles: {pods.ok} logins, "
        f"{pods.failed} failed {pods.reasons}; store errors {pods.store_errors}, "
        f"stale serves {pods.stale_serves}"
    )
    assert pods.failed == 0 and pods.ok > 500
    assert values(path)["DB_USER"] == role_b
    reader = SecretManager(environ=environ, ttl_seconds=0)
    assert reader.get("DB_USER") == role_b  # the store holds what the manifest holds
    reader.close()
