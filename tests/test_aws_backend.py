"""The AWS Secrets Manager backend against moto's server mode: names, fields, stages, batches.

Errors and the no-leak checks are in ``test_aws_errors.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import pytest

from tests.aws_support import CallLog, inject_error, slow_down
from tests.servers.moto import MotoServer
from yosai_secrets import get_secret
from yosai_secrets.backends import BatchBackend, create_backend
from yosai_secrets.backends.aws import AwsBackend, AwsSettings
from yosai_secrets.errors import ConfigurationError, InvalidReferenceError, SecretNotFoundError
from yosai_secrets.manager import SecretManager
from yosai_secrets.testing import FakeClock

pytestmark = pytest.mark.integration


def _uid() -> str:
    return uuid.uuid4().hex[:12]


def _backend(server: MotoServer, **settings: Any) -> tuple[AwsBackend, CallLog]:
    client = server.client()
    return AwsBackend(client, settings=AwsSettings(**settings)), CallLog(client)


def test_done_when_get_secret_prints_the_emulators_value(moto_server: MotoServer) -> None:
    """SECRET_BACKEND=aws + AWS_ENDPOINT_URL: get_secret("DB_PASSWORD") prints the stored value."""
    value = f"db-password-{_uid()}"
    pair = json.dumps({"username": "app", "password": value})
    client = moto_server.client()
    try:
        client.create_secret(Name="DB_CREDENTIALS", SecretString=pair)
    except client.exceptions.ResourceExistsException:
        client.put_secret_value(SecretId="DB_CREDENTIALS", SecretString=pair)
    env = dict(
        os.environ,
        SECRET_BACKEND="aws",
        AWS_ENDPOINT_URL=moto_server.endpoint_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    code = "from yosai_secrets import get_secret; print(get_secret('DB_PASSWORD'))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == value


def test_backend_satisfies_both_protocols_and_the_registry_builds_it(aws_env: MotoServer) -> None:
    """create_backend("aws") gives an AwsBackend that is a Backend and a BatchBackend."""
    backend = create_backend("aws", os.environ)
    assert isinstance(backend, AwsBackend) and isinstance(backend, BatchBackend)
    assert backend.name == "aws"
    assert backend.settings.endpoint_url == aws_env.endpoint_url
    assert backend.client.meta.config.retries["mode"] == "standard"


def test_plain_secret_by_name(aws_env: MotoServer) -> None:
    """A bare key reads the secret of that name, as text."""
    name = f"PLAIN_{_uid()}"
    aws_env.client().create_secret(Name=name, SecretString="plain-value-123")
    assert get_secret(name) == "plain-value-123"


def test_prefix_is_prepended_once(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """SECRET_NAME_PREFIX makes SECRET_KEY read prod/SECRET_KEY; a prefixed name is kept."""
    prefix = f"{_uid()}/"
    monkeypatch.setenv("SECRET_NAME_PREFIX", prefix)
    aws_env.client().create_secret(Name=f"{prefix}SECRET_KEY", SecretString="prefixed-value")
    manager = SecretManager()
    assert manager.get("SECRET_KEY") == "prefixed-value"
    assert manager.get(f"{prefix}SECRET_KEY") == "prefixed-value"
    assert manager.stats().backend_calls == 1  # both keys are one cache entry
    assert manager.describe("SECRET_KEY") == f"aws {prefix}SECRET_KEY (us-east-1)"


def test_db_user_and_password_are_one_json_secret(
    aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DB_USER and DB_PASSWORD are keys of prefix+DB_CREDENTIALS, read in one call as one pair."""
    prefix = f"{_uid()}/"
    monkeypatch.setenv("SECRET_NAME_PREFIX", prefix)
    pair = {"username": "app_b", "password": "pw-of-app-b"}
    aws_env.client().create_secret(Name=f"{prefix}DB_CREDENTIALS", SecretString=json.dumps(pair))
    manager = SecretManager()
    assert manager.get_many(["DB_USER", "DB_PASSWORD", "secret:DB_USER"]) == {
        "DB_USER": "app_b",
        "DB_PASSWORD": "pw-of-app-b",
        "secret:DB_USER": "app_b",
    }
    assert manager.stats().backend_calls == 1
    assert manager.describe("DB_PASSWORD") == f"aws {prefix}DB_CREDENTIALS (us-east-1)#password"


def test_locate_maps_names_fields_and_arns() -> None:
    """locate(): prefix, #key, ARNs unprefixed; an empty name or key is refused."""
    backend = AwsBackend(client=None, settings=AwsSettings(name_prefix="prod/"))
    assert backend.locate("SECRET_KEY").path == "prod/SECRET_KEY"
    assert backend.locate("DB_PASSWORD") == ("prod/DB_CREDENTIALS", "password")
    assert backend.locate("DB_USER") == ("prod/DB_CREDENTIALS", "username")
    assert backend.locate("DB_PASSWORD#x") == ("prod/DB_PASSWORD", "x")  # explicit: as written
    assert backend.locate("prod/db#password") == backend.locate("db#password")
    assert backend.locate("db#password").field == "password"
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
    assert backend.locate(arn).path == arn
    for bad in ("", "#password", "db#"):
        with pytest.raises(InvalidReferenceError):
            backend.locate(bad)


def test_json_keys_of_one_secret_cost_one_read(aws_env: MotoServer) -> None:
    """prod/db#password picks a JSON key; other keys of the same secret need no second call."""
    name = f"{_uid()}/db"
    body = {"password": "json-password", "port": 5432, "tls": True}
    aws_env.client().create_secret(Name=name, SecretString=json.dumps(body))
    manager = SecretManager()
    assert manager.get(f"{name}#password") == "json-password"
    assert manager.get(f"{name}#port") == "5432"
    assert manager.get(f"{name}#tls") == "true"
    assert json.loads(manager.get(name)) == body
    with pytest.raises(SecretNotFoundError, match="fields present: password, port, tls"):
        manager.get(f"{name}#user")
    assert manager.stats().backend_calls == 1


def test_aws_reference_works_whatever_the_default_backend(
    aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aws-secrets:NAME#key is read from AWS even with SECRET_BACKEND=env."""
    monkeypatch.setenv("SECRET_BACKEND", "env")
    name = f"{_uid()}/auth0"
    aws_env.client().create_secret(Name=name, SecretString=json.dumps({"domain": "t.auth0.com"}))
    assert get_secret(f"aws-secrets:{name}#domain") == "t.auth0.com"


def test_binary_secret_is_bytes_only_where_asked_for(aws_env: MotoServer) -> None:
    """SecretBinary: get() refuses it with a clear error, get_bytes() returns the bytes."""
    name = f"BIN_{_uid()}"
    aws_env.client().create_secret(Name=name, SecretBinary=b"\x00\x01binary\xff")
    manager = SecretManager()
    with pytest.raises(ConfigurationError, match="is binary; read it with get_bytes"):
        manager.get(name)
    assert manager.get_bytes(name) == b"\x00\x01binary\xff"


def _rotate(server: MotoServer, name: str) -> tuple[str, str]:
    """old -> AWSPREVIOUS, new -> AWSCURRENT, through AWSPENDING; returns both version ids."""
    client = server.client()
    old = client.create_secret(Name=name, SecretString="old-value")["VersionId"]
    new = client.put_secret_value(
        SecretId=name, SecretString="new-value", VersionStages=["AWSPENDING"]
    )["VersionId"]
    client.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=new, RemoveFromVersionId=old
    )
    return old, new


def test_pending_current_previous_and_version_ids(moto_server: MotoServer) -> None:
    """fetch_version reads AWSPENDING, AWSPREVIOUS and a VersionId; fetch reads AWSCURRENT."""
    name = f"ROT_{_uid()}"
    client = moto_server.client()
    old = client.create_secret(Name=name, SecretString="old-value")["VersionId"]
    new = client.put_secret_value(
        SecretId=name, SecretString="new-value", VersionStages=["AWSPENDING"]
    )["VersionId"]
    backend = AwsBackend(moto_server.client())
    assert backend.fetch(name) == "old-value"
    assert backend.fetch_version(name, stage="AWSPENDING") == "new-value"
    client.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=new, RemoveFromVersionId=old
    )
    # moto answers a call without VersionStage with the old version here; we always name it.
    assert backend.fetch(name) == "new-value"
    assert backend.fetch_version(name, stage="AWSPREVIOUS") == "old-value"
    assert backend.fetch_version(name, version_id=old) == "old-value"
    assert backend.fetch_version(name, version_id=new, stage="AWSCURRENT") == "new-value"
    with pytest.raises(SecretNotFoundError, match="NOSUCHSTAGE"):
        backend.fetch_version(name, stage="NOSUCHSTAGE")


def test_constructor_arguments_override_the_settings(moto_server: MotoServer) -> None:
    """name_prefix, version_stage and version_id given to AwsBackend override its settings."""
    name = f"ARGS_{_uid()}"
    old, _ = _rotate(moto_server, f"p/{name}")
    settings = AwsSettings(name_prefix="q/", region="us-east-1")
    backend = AwsBackend(moto_server.client(), settings=settings, name_prefix="p/")
    assert backend.fetch(backend.locate(name).path) == "new-value"
    pinned = AwsBackend(moto_server.client(), name_prefix="p/", version_id=old)
    assert pinned.fetch(pinned.locate(name).path) == "old-value"
    staged = AwsBackend(moto_server.client(), name_prefix="p/", version_stage="AWSPREVIOUS")
    assert staged.fetch(staged.locate(name).path) == "old-value"
    assert backend.settings.region == "us-east-1"  # the rest of the settings kept


def test_stage_and_version_id_from_the_environment(
    aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_SECRET_VERSION_STAGE / AWS_SECRET_VERSION_ID choose what get_secret reads."""
    name = f"ENVROT_{_uid()}"
    old, _ = _rotate(aws_env, name)
    monkeypatch.setenv("AWS_SECRET_VERSION_STAGE", "AWSPREVIOUS")
    assert SecretManager().get(name) == "old-value"
    monkeypatch.delenv("AWS_SECRET_VERSION_STAGE")
    monkeypatch.setenv("AWS_SECRET_VERSION_ID", old)
    assert SecretManager().get(name) == "old-value"
    monkeypatch.delenv("AWS_SECRET_VERSION_ID")
    assert SecretManager().get(name) == "new-value"


def test_settings_follow_boto3_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_REGION beats AWS_DEFAULT_REGION; the service endpoint beats the global one."""
    settings = AwsSettings.from_environ(
        {
            "AWS_REGION": "eu-west-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": "http://global",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://sm",
            "AWS_MAX_ATTEMPTS": "4",
            "AWS_ACCESS_KEY_ID": "key-id-not-shown",
            "AWS_SECRET_ACCESS_KEY": "secret-not-shown",
        }
    )
    assert (settings.region, settings.endpoint_url, settings.max_attempts) == (
        "eu-west-1",
        "http://sm",
        4,
    )
    assert settings.retry_mode == "standard"
    assert "not-shown" not in repr(settings) and "not-shown" not in repr(AwsBackend(None))
    client = AwsBackend(settings=settings).client
    assert client.meta.region_name == "eu-west-1" and client.meta.endpoint_url == "http://sm"
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}
    with pytest.raises(ConfigurationError, match="AWS_MAX_ATTEMPTS"):
        AwsSettings.from_environ({"AWS_MAX_ATTEMPTS": "many"})


def test_client_is_built_once_across_threads(aws_env: MotoServer) -> None:
    """Sixteen threads asking for the lazy client all get the same one."""
    backend = AwsBackend.from_environ(os.environ)
    seen: list[int] = []
    barrier = threading.Barrier(16)

    def grab() -> None:
        barrier.wait()
        seen.append(id(backend.client))

    threads = [threading.Thread(target=grab) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 16 and len(set(seen)) == 1


# -- batches -------------------------------------------------------------------------------------


def _many(server: MotoServer, count: int) -> list[str]:
    client, prefix = server.client(), _uid()
    names = [f"{prefix}/S{i:02d}" for i in range(count)]
    for name in names:
        client.create_secret(Name=name, SecretString=f"value-of-{name}")
    return names


def test_forty_secrets_take_two_batch_calls(moto_server: MotoServer) -> None:
    """get_many of 40 cold secrets: 2 BatchGetSecretValue calls (20 each), every value right."""
    names = _many(moto_server, 40)
    backend, calls = _backend(moto_server)
    results = SecretManager(backend).get_many(names)
    assert results == {name: f"value-of-{name}" for name in names}
    assert calls.operations == ["BatchGetSecretValue", "BatchGetSecretValue"]


def test_batch_reports_each_missing_secret_and_serves_the_rest(moto_server: MotoServer) -> None:
    """A missing secret in a batch is its own SecretNotFoundError; the others are read."""
    names = _many(moto_server, 3)
    missing = f"{_uid()}/missing"
    backend, calls = _backend(moto_server)
    results = backend.fetch_many([*names, missing])
    assert [results[n] for n in names] == [f"value-of-{n}" for n in names]
    assert isinstance(results[missing], SecretNotFoundError)
    assert missing in str(results[missing]) and "us-east-1" in str(results[missing])
    assert calls.operations == ["BatchGetSecretValue"]


@pytest.mark.parametrize("code", ["AccessDeniedException", "UnknownOperationException"])
def test_batch_refused_falls_back_to_one_read_each(moto_server: MotoServer, code: str) -> None:
    """IAM refusing the batch API, or an API without it: one GetSecretValue each, remembered."""
    names = _many(moto_server, 3)
    backend, calls = _backend(moto_server)
    inject_error(backend.client, "BatchGetSecretValue", code)
    assert backend.fetch_many(names) == {n: f"value-of-{n}" for n in names}
    assert calls.count("BatchGetSecretValue") == 1 and calls.count("GetSecretValue") == 3
    backend.fetch_many(names)
    assert calls.count("BatchGetSecretValue") == 1  # not asked again


def test_pinned_version_never_uses_the_batch_api(moto_server: MotoServer) -> None:
    """A stage other than AWSCURRENT cannot be chosen in a batch: one read each."""
    names = [f"PIN_{_uid()}", f"PIN_{_uid()}"]
    for name in names:
        _rotate(moto_server, name)
    client = moto_server.client()
    calls = CallLog(client)
    backend = AwsBackend(client, version_stage="AWSPREVIOUS")
    assert backend.fetch_many(names) == dict.fromkeys(names, "old-value")
    assert calls.operations == ["GetSecretValue", "GetSecretValue"]


def test_batch_after_a_stage_move_returns_the_current_version(moto_server: MotoServer) -> None:
    """A batch answer that is not AWSCURRENT (moto's quirk) is re-read with the stage named."""
    names = [f"MOVED_{_uid()}", f"MOVED_{_uid()}"]
    for name in names:
        _rotate(moto_server, name)
    backend, _ = _backend(moto_server)
    assert backend.fetch_many(names) == dict.fromkeys(names, "new-value")


# -- the cache in front of AWS -------------------------------------------------------------------


def test_sixteen_threads_on_one_cold_key_make_one_call(moto_server: MotoServer) -> None:
    """Single-flight: 16 concurrent readers of one cold secret cause exactly one API call."""
    name = f"HOT_{_uid()}"
    moto_server.client().create_secret(Name=name, SecretString="hot-value")
    backend, calls = _backend(moto_server)
    slow_down(backend.client, 0.2)
    manager = SecretManager(backend)
    barrier = threading.Barrier(16)
    got: list[str] = []

    def read() -> None:
        barrier.wait()
        got.append(manager.get(name))

    threads = [threading.Thread(target=read) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == ["hot-value"] * 16
    assert calls.operations == ["GetSecretValue"]


def test_readers_are_not_blocked_while_a_value_can_be_served(moto_server: MotoServer) -> None:
    """Past its TTL a value is refreshed in the background; readers get the old one at once."""
    name = f"SLOW_{_uid()}"
    moto_server.client().create_secret(Name=name, SecretString="first-value")
    backend, calls = _backend(moto_server)
    clock = FakeClock()
    manager = SecretManager(backend, ttl_seconds=60, clock=clock)
    assert manager.get(name) == "first-value"
    moto_server.client().put_secret_value(SecretId=name, SecretString="second-value")
    # From now on each call is held before it is sent, until the test releases it.
    entered, release = threading.Event(), threading.Event()

    def hold(**_: Any) -> None:
        entered.set()
        release.wait(60)

    backend.client.meta.events.register("before-call.secrets-manager.GetSecretValue", hold)
    clock.advance(61)
    # A reader that waited for the refresh would still be waiting (and then see the new value).
    assert manager.get(name) == "first-value"
    assert manager.get(name) == "first-value"
    assert entered.wait(30)  # the refresh did start
    release.set()
    deadline = time.monotonic() + 30  # the refresh lands in milliseconds: a hang guard
    while calls.count() < 2 or manager.get(name) != "second-value":
        assert time.monotonic() < deadline, "the background refresh never landed"
        time.sleep(0.01)
    assert calls.count() == 2


def test_stale_value_is_served_while_aws_fails(moto_server: MotoServer) -> None:
    """When a refresh fails (throttled), the last good value is served within max_stale."""
    name = f"STALE_{_uid()}"
    moto_server.client().create_secret(Name=name, SecretString="good-value")
    backend = AwsBackend(moto_server.client(), throttle_retries=0)
    clock = FakeClock()
    manager = SecretManager(backend, ttl_seconds=60, max_stale_seconds=600, clock=clock)
    assert manager.get(name) == "good-value"
    inject_error(backend.client, "GetSecretValue", "ThrottlingException")
    clock.advance(61)
    deadline = time.monotonic() + 30  # the failed refresh lands in milliseconds: a hang guard
    while not manager.is_stale(name):
        assert manager.get(name) == "good-value"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert manager.get(name) == "good-value"
