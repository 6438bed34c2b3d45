"""Rotation in the secret stores: Vault/OpenBao KV v2 versions and AWS staging labels."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from yosai_secrets.backends.aws import AwsBackend
from yosai_secrets.manager import SecretManager, get_secret, reset_default_manager
from yosai_secrets.rotation import RotationEngine, RotationOptions, parse_fallbacks
from yosai_secrets.rotation.aws_store import AwsStore
from yosai_secrets.testing import MemoryBackend

from .rotation_support import Killed, crash_after, make_manifest, values

OLD_KEY = "old-signing-key-" + "y" * 40


def _vault_setup(
    tmp_path: Path, openbao: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Any, str]:
    name = "rot-" + uuid.uuid4().hex[:10]
    monkeypatch.setenv("VAULT_SECRETS_PATH", f"secret/data/{name}")
    client = openbao.client()
    client.secrets.kv.v2.create_or_update_secret(
        name,
        secret={"SECRET_KEY": OLD_KEY, "SECRET_KEY_FALLBACKS": "[]", "AUTH0_DOMAIN": "t.example"},
        mount_point="secret",
    )
    path = make_manifest(tmp_path, SECRET_KEY=OLD_KEY)
    return path, client, name


def _options(path: Path, **kw: Any) -> RotationOptions:
    return RotationOptions(
        manifest=path, apply=False, keys=["SECRET_KEY"], environ=os.environ, **kw
    )


def _version(client: Any, name: str, version: int | None = None) -> dict[str, Any]:
    read = client.secrets.kv.v2.read_secret_version(
        name, version=version, mount_point="secret", raise_on_deleted_version=True
    )
    return dict(read["data"]["data"])


def _meta(client: Any, name: str) -> dict[str, Any]:
    return dict(client.secrets.kv.v2.read_secret_metadata(name, mount_point="secret")["data"])


@pytest.mark.integration
def test_vault_gets_a_new_version_and_finish_destroys_the_old(
    tmp_path: Path, vault_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rotate writes a new KV v2 version (old one readable); finish destroys the old versions."""
    path, client, name = _vault_setup(tmp_path, vault_env, monkeypatch)
    report = RotationEngine(_options(path)).rotate()
    assert report.outcome == "rotated" and report.store == "vault"
    current = _version(client, name)
    assert current["SECRET_KEY"] == values(path)["SECRET_KEY"] != OLD_KEY
    assert parse_fallbacks(current["SECRET_KEY_FALLBACKS"]) == [OLD_KEY]
    assert current["AUTH0_DOMAIN"] == "t.example"
    assert _version(client, name, 1)["SECRET_KEY"] == OLD_KEY  # the old version remains
    assert "rotated_at_SECRET_KEY" in (_meta(client, name)["custom_metadata"] or {})

    # No cluster here (a stand-in would only echo the manifest back): finish is told to skip it.
    finished = RotationEngine(_options(path, now=True, skip_cluster_check=True)).finish()
    assert finished.outcome == "finished"
    meta = _meta(client, name)
    assert meta["current_version"] == 3
    assert parse_fallbacks(_version(client, name)["SECRET_KEY_FALLBACKS"]) == []
    assert meta["versions"]["1"]["destroyed"] and meta["versions"]["2"]["destroyed"]


@pytest.mark.integration
def test_vault_abort_makes_the_old_value_current_again(
    tmp_path: Path, vault_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--abort writes the old values back and destroys the rotated version."""
    path, client, name = _vault_setup(tmp_path, vault_env, monkeypatch)
    RotationEngine(_options(path)).rotate()
    RotationEngine(_options(path)).abort()
    current = _version(client, name)
    assert current["SECRET_KEY"] == OLD_KEY
    assert parse_fallbacks(current["SECRET_KEY_FALLBACKS"]) == []
    assert _meta(client, name)["versions"]["2"]["destroyed"]
    assert values(path)["SECRET_KEY"] == OLD_KEY


@pytest.mark.integration
@pytest.mark.parametrize("step", ["prepare", "store-stage", "manifest", "store-promote", "apply"])
def test_vault_killed_rotation_converges_without_duplicate_versions(
    tmp_path: Path, vault_env: Any, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """Killed at any step and re-run, Vault ends with exactly one new version: the manifest's."""
    path, client, name = _vault_setup(tmp_path, vault_env, monkeypatch)
    with pytest.raises(Killed):
        RotationEngine(_options(path, after_step=crash_after(step))).rotate()
    RotationEngine(_options(path)).rotate()
    assert _meta(client, name)["current_version"] == 2
    assert _version(client, name)["SECRET_KEY"] == values(path)["SECRET_KEY"]
    assert _version(client, name, 1)["SECRET_KEY"] == OLD_KEY


@pytest.mark.integration
def test_status_reads_the_vault_version_time(
    tmp_path: Path, vault_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """status lists the Vault rotation time next to the manifest annotation."""
    from click.testing import CliRunner

    from yosai_secrets.cli import cli

    path, _, _ = _vault_setup(tmp_path, vault_env, monkeypatch)
    RotationEngine(_options(path)).rotate()
    result = CliRunner().invoke(
        cli, ["status", "--manifest", str(path), "--keys", "SECRET_KEY", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert '"source": "vault"' in result.output and '"state": "ok"' in result.output


def test_every_rotated_key_is_invalidated(tmp_path: Path) -> None:
    """After a rotation get_secret() reads the rotated keys from their source again."""
    backend = MemoryBackend({"SECRET_KEY": "cached-old-value-123456"})
    reset_default_manager(SecretManager(backend, environ={}))
    assert get_secret("SECRET_KEY") == "cached-old-value-123456"
    backend.data["SECRET_KEY"] = "the-source-moved-on-654321"
    path = make_manifest(tmp_path)
    RotationEngine(
        RotationOptions(manifest=path, apply=False, keys=["SECRET_KEY"], environ={})
    ).rotate()
    assert get_secret("SECRET_KEY") == "the-source-moved-on-654321"


@pytest.fixture
def sm_client(request: pytest.FixtureRequest) -> Any:
    """A boto3 Secrets Manager client on the session's moto server (skipped if unavailable)."""
    try:
        server = request.getfixturevalue("moto_server")
    except pytest.FixtureLookupError:
        pytest.skip("the moto_server fixture (tests/servers/moto.py) is not available")
    return server.client()


def _stages(client: Any, name: str) -> dict[str, list[str]]:
    return dict(client.describe_secret(SecretId=name)["VersionIdsToStages"])


def _current(client: Any, name: str) -> str:
    return str(client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"])


@pytest.mark.integration
def test_aws_pending_then_current_then_previous_removed(sm_client: Any) -> None:
    """AWS: AWSPENDING first, then AWSCURRENT; the old keeps AWSPREVIOUS until finish."""
    name = f"rot-{uuid.uuid4().hex[:10]}-SECRET_KEY"
    sm_client.create_secret(Name=name, SecretString="old-value")
    store, state = AwsStore(AwsBackend(sm_client)), {"backend": "aws"}
    store.prepare(state, {name: "old-value"})
    old_version = state["entries"][name]["old_version"]
    store.stage(state, {name: "new-value"})
    store.stage(state, {name: "new-value"})  # idempotent: the same request token
    token = state["entries"][name]["token"]
    assert _stages(sm_client, name)[token] == ["AWSPENDING"]
    assert _current(sm_client, name) == "old-value"
    store.promote(state, {name: "new-value"}, "2026-01-01T00:00:00Z")
    store.promote(state, {name: "new-value"}, "2026-01-01T00:00:00Z")
    stages = _stages(sm_client, name)
    assert stages[token] == ["AWSCURRENT"] and "AWSPREVIOUS" in stages[old_version]
    assert _current(sm_client, name) == "new-value"
    assert store.rotated_at(name) is not None
    store.finish(state, {})
    assert all("AWSPREVIOUS" not in s for s in _stages(sm_client, name).values())


@pytest.mark.integration
def test_aws_abort_moves_current_back(sm_client: Any) -> None:
    """AWS abort: AWSCURRENT back on the old version, no AWSPENDING left."""
    name = f"rot-{uuid.uuid4().hex[:10]}-DB_PASSWORD"
    sm_client.create_secret(Name=name, SecretString="old-value")
    store, state = AwsStore(AwsBackend(sm_client)), {"backend": "aws"}
    store.prepare(state, {name: "old-value"})
    store.stage(state, {name: "new-value"})
    store.promote(state, {name: "new-value"}, "2026-01-01T00:00:00Z")
    store.abort(state, {name: "old-value"}, {name: "new-value"})
    assert _current(sm_client, name) == "old-value"
    assert all("AWSPENDING" not in s for s in _stages(sm_client, name).values())


@pytest.mark.integration
def test_aws_rotation_end_to_end_with_a_held_password(
    tmp_path: Path, sm_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unmanaged password stays AWSPENDING until --restart, then becomes AWSCURRENT."""
    key = f"T{uuid.uuid4().hex[:8].upper()}_PASSWORD"
    sm_client.create_secret(Name=key, SecretString="old-held-password")
    path = make_manifest(tmp_path)
    from yosai_secrets.rotation.manifest import SecretManifest

    manifest = SecretManifest(path)
    manifest.set(key, "old-held-password", near="DB_PASSWORD")
    manifest.save()
    options = RotationOptions(
        manifest=path,
        apply=False,
        keys=[key],
        environ={"SECRET_BACKEND": "aws"},
        store=AwsStore(AwsBackend(sm_client)),
    )
    assert RotationEngine(options).rotate().outcome == "awaiting-operator"
    assert _current(sm_client, key) == "old-held-password"
    assert any("AWSPENDING" in s for s in _stages(sm_client, key).values())
    RotationEngine(options).restart()
    assert _current(sm_client, key) == values(path)[key] != "old-held-password"


def _aws_values(client: Any, prefix: str, keys: list[str], stage: str) -> dict[str, str]:
    """Each key's value at ``stage``, read as the application reads it (absent keys left out)."""
    backend = AwsBackend(client, name_prefix=prefix, version_stage=stage)
    manager = SecretManager(backend, environ={}, ttl_seconds=0)
    found = {key: manager.get(key, default=None) for key in keys}
    return {key: value for key, value in found.items() if value is not None}


@pytest.mark.integration
@pytest.mark.parametrize("step", [None, "store-stage", "db-set", "manifest", "store-promote"])
def test_aws_and_alternating_postgres_end_to_end(
    tmp_path: Path, sm_client: Any, postgres: Any, step: str | None
) -> None:
    """Engine with AWS and alternating roles: killed anywhere, it converges; finish cleans up."""
    from .test_rotation_postgres import _alternating, can_login

    path, role_a, pw_a, role_b, pair = _alternating(tmp_path, postgres)
    prefix = f"t{uuid.uuid4().hex[:8]}/"
    before = values(path)
    keys = ["SECRET_KEY", "SECRET_KEY_FALLBACKS", "DB_USER", "DB_PASSWORD"]
    for key in keys[:2]:
        sm_client.create_secret(Name=prefix + key, SecretString=before[key])
    pair_now = {"username": before["DB_USER"], "password": before["DB_PASSWORD"]}
    sm_client.create_secret(Name=prefix + "DB_CREDENTIALS", SecretString=json.dumps(pair_now))

    def options(**kw: Any) -> RotationOptions:
        return RotationOptions(
            manifest=path,
            apply=False,
            database_url=postgres.url(),
            db_users=pair.split(","),
            environ={},
            store=AwsStore(AwsBackend(sm_client, name_prefix=prefix)),
            **kw,
        )

    if step is not None:
        with pytest.raises(Killed):
            RotationEngine(options(after_step=crash_after(step))).rotate()
    assert RotationEngine(options()).rotate().outcome == "rotated"
    now = values(path)
    assert _aws_values(sm_client, prefix, keys, "AWSCURRENT") == {k: now[k] for k in keys}
    assert _aws_values(sm_client, prefix, keys, "AWSPREVIOUS") == {k: before[k] for k in keys}
    assert now["DB_USER"] == role_b and can_login(postgres, role_b, now["DB_PASSWORD"])
    assert can_login(postgres, role_a, pw_a)  # until finish
    for name in ("SECRET_KEY", "SECRET_KEY_FALLBACKS", "DB_CREDENTIALS"):  # no duplicates
        versions = sm_client.list_secret_version_ids(SecretId=prefix + name)["Versions"]
        assert len(versions) == 2

    finished = RotationEngine(options(now=True, skip_cluster_check=True)).finish()
    assert finished.outcome == "finished"
    assert _aws_values(sm_client, prefix, keys, "AWSPREVIOUS") == {}
    current = _aws_values(sm_client, prefix, keys, "AWSCURRENT")
    assert parse_fallbacks(current["SECRET_KEY_FALLBACKS"]) == []
    assert not can_login(postgres, role_a, pw_a)


# -- per-key rotation stamps and the database credential pair ---------------------------------

STAMP = "2026-11-29T10:00:00Z"


def _aws_store(client: Any, prefix: str) -> AwsStore:
    return AwsStore(AwsBackend(client, name_prefix=prefix))


@pytest.mark.integration
def test_vault_stamps_are_per_key_and_abort_puts_them_back(
    vault_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only stamped keys have a rotation time; a fresh version does not make others look fresh."""
    from yosai_secrets.rotation.stores import open_store

    name = "stamp-" + uuid.uuid4().hex[:10]
    monkeypatch.setenv("VAULT_SECRETS_PATH", f"secret/data/{name}")
    monkeypatch.setenv("SECRET_BACKEND", "vault")
    client = vault_env.client()
    old = {"SECRET_KEY": OLD_KEY, "DB_PASSWORD": "old-db-password"}
    client.secrets.kv.v2.create_or_update_secret(name, secret=old, mount_point="secret")
    client.secrets.kv.v2.update_metadata(
        name,
        mount_point="secret",
        custom_metadata={"rotated_at_DB_PASSWORD": "2026-01-01T00:00:00Z"},
    )
    store = open_store(os.environ)
    assert store.rotated_at("SECRET_KEY") is None  # written just now, but never stamped
    state: dict[str, Any] = {}
    new = {"SECRET_KEY": "new-signing-key-" + "n" * 40}
    store.prepare(state, {"SECRET_KEY": OLD_KEY})
    store.stage(state, new)
    store.promote(state, new, STAMP)
    rotated = store.rotated_at("SECRET_KEY")
    assert rotated is not None and rotated.isoformat() == "2026-11-29T10:00:00+00:00"
    before = store.rotated_at("DB_PASSWORD")
    assert before is not None and before.year == 2026 and before.month == 1
    store.abort(state, {"SECRET_KEY": OLD_KEY}, new)
    assert store.rotated_at("SECRET_KEY") is None
    assert store.rotated_at("DB_PASSWORD") == before
    assert _version(client, name)["SECRET_KEY"] == OLD_KEY


@pytest.mark.integration
def test_aws_db_user_and_password_change_in_one_version(sm_client: Any) -> None:
    """DB_USER and DB_PASSWORD are one JSON version: readers see the old pair, then the new one."""
    prefix = f"pair-{uuid.uuid4().hex[:8]}/"
    secret_id = prefix + "DB_CREDENTIALS"
    old_pair = {"username": "app_a", "password": "pw-a", "host": "db.internal"}
    sm_client.create_secret(Name=secret_id, SecretString=json.dumps(old_pair))
    store, state = _aws_store(sm_client, prefix), {"backend": "aws"}
    old = {"DB_USER": "app_a", "DB_PASSWORD": "pw-a"}
    new = {"DB_USER": "app_b", "DB_PASSWORD": "pw-b"}
    store.prepare(state, old)
    store.stage(state, new)
    store.stage(state, new)  # idempotent: one request token for the pair
    keys = ["DB_USER", "DB_PASSWORD"]
    assert _aws_values(sm_client, prefix, keys, "AWSCURRENT") == old
    assert _aws_values(sm_client, prefix, keys, "AWSPENDING") == new
    store.promote(state, new, STAMP)
    assert _aws_values(sm_client, prefix, keys, "AWSCURRENT") == new
    assert _aws_values(sm_client, prefix, keys, "AWSPREVIOUS") == old
    current = json.loads(_current(sm_client, secret_id))
    assert current == {"username": "app_b", "password": "pw-b", "host": "db.internal"}
    assert len(sm_client.list_secret_version_ids(SecretId=secret_id)["Versions"]) == 2
    assert store.rotated_at("DB_USER") == store.rotated_at("DB_PASSWORD") is not None


@pytest.mark.integration
def test_aws_stamp_is_a_tag_and_abort_removes_it(sm_client: Any) -> None:
    """rotated-at is written at promote; an untagged secret is unknown; abort restores the tag."""
    prefix = f"tag-{uuid.uuid4().hex[:8]}/"
    sm_client.create_secret(Name=prefix + "SECRET_KEY", SecretString=OLD_KEY)
    store, state = _aws_store(sm_client, prefix), {"backend": "aws"}
    assert store.rotated_at("SECRET_KEY") is None  # a fresh version, but no stamp: unknown
    new = {"SECRET_KEY": "new-signing-key-" + "t" * 40}
    store.prepare(state, {"SECRET_KEY": OLD_KEY})
    store.stage(state, new)
    assert store.rotated_at("SECRET_KEY") is None  # staged, not promoted
    store.promote(state, new, STAMP)
    tags = sm_client.describe_secret(SecretId=prefix + "SECRET_KEY").get("Tags") or []
    assert {"Key": "rotated-at", "Value": STAMP} in tags
    rotated = store.rotated_at("SECRET_KEY")
    assert rotated is not None and rotated.isoformat() == "2026-11-29T10:00:00+00:00"
    store.abort(state, {"SECRET_KEY": OLD_KEY}, new)
    assert store.rotated_at("SECRET_KEY") is None
    assert _current(sm_client, prefix + "SECRET_KEY") == OLD_KEY


@pytest.mark.integration
def test_aws_credentials_that_are_not_json_are_a_clear_error(sm_client: Any) -> None:
    """A DB_CREDENTIALS that is not a JSON object stops the rotation, naming it, not its value."""
    from yosai_secrets.errors import RotationError

    prefix = f"bad-{uuid.uuid4().hex[:8]}/"
    sm_client.create_secret(Name=prefix + "DB_CREDENTIALS", SecretString="plain-old-password")
    store, state = _aws_store(sm_client, prefix), {"backend": "aws"}
    store.prepare(state, {"DB_PASSWORD": "plain-old-password"})
    with pytest.raises(RotationError, match="DB_CREDENTIALS is not a JSON object") as info:
        store.stage(state, {"DB_PASSWORD": "new-password"})
    assert '"password": ...' in str(info.value)
    assert "plain-old-password" not in str(info.value)
