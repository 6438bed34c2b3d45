"""AWS backend errors: each translated into ours, naming secret and region, leaking nothing.

Errors moto produces are produced by moto (a missing secret, a deleted one, no region, a closed
port, and, on a second server with moto's IAM checks on, unknown keys, bad signatures and denied
reads). Those it cannot produce (throttling, KMS decryption failure, expired tokens) are injected
into a real botocore client through its own ``before-call`` event hook.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.aws_support import CallLog, inject_error
from tests.conftest import require
from tests.servers.moto import MotoServer, find_moto_server, start_moto, stop_moto
from yosai_secrets import get_secret
from yosai_secrets.backends.aws import AwsBackend, AwsSettings
from yosai_secrets.errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionError,
    BackendUnavailableError,
    ConfigurationError,
    MissingDependencyError,
    SecretNotFoundError,
)
from yosai_secrets.manager import SecretManager

pytestmark = pytest.mark.integration


def _uid() -> str:
    return uuid.uuid4().hex[:12]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _everything(exc: BaseException) -> str:
    """The error as a user could ever see it: message, repr, traceback with its causes."""
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc))])


# -- errors the emulator produces ------------------------------------------------------------


def test_missing_secret_names_secret_stage_and_region(aws_env: MotoServer) -> None:
    """ResourceNotFoundException -> SecretNotFoundError naming the secret, stage and region."""
    name = f"NOPE_{_uid()}"
    with pytest.raises(SecretNotFoundError) as info:
        get_secret(name)
    message = str(info.value)
    assert f"aws secret '{name}' (AWSCURRENT) in us-east-1" in message
    assert "SECRET_NAME_PREFIX" in message
    assert isinstance(info.value.__cause__, Exception)
    assert "ResourceNotFoundException" in str(info.value.__cause__)
    assert get_secret(name, default="fallback") == "fallback"


def test_deleted_secret_is_a_backend_error(aws_env: MotoServer) -> None:
    """A secret scheduled for deletion (InvalidRequestException) says so, as a BackendError."""
    name = f"GONE_{_uid()}"
    client = aws_env.client()
    client.create_secret(Name=name, SecretString="soon-gone")
    client.delete_secret(SecretId=name)
    with pytest.raises(BackendError, match="scheduled for deletion") as info:
        get_secret(name)
    assert name in str(info.value) and "us-east-1" in str(info.value)


def test_no_region_says_set_aws_region(
    aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No region anywhere: a ConfigurationError telling to set AWS_REGION."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-config"))
    with pytest.raises(ConfigurationError, match="set AWS_REGION"):
        get_secret("DB_PASSWORD")


def test_aws_region_is_honoured_and_named(
    aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_REGION chooses the region: a us-east-1 secret is not found in eu-west-1, and said so."""
    name = f"REGIONAL_{_uid()}"
    aws_env.client().create_secret(Name=name, SecretString="us-only")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    with pytest.raises(SecretNotFoundError, match="in eu-west-1"):
        get_secret(name)


def test_missing_profile_is_a_configuration_error(
    aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """AWS_PROFILE naming no profile: a ConfigurationError naming AWS_PROFILE."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-config"))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(ConfigurationError, match="AWS_PROFILE"):
        get_secret("DB_PASSWORD")


def test_profile_from_the_config_files_is_used(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """AWS_PROFILE: region and credentials come from the shared AWS files, as in boto3."""
    name = f"PROFILED_{_uid()}"
    moto_server.client().create_secret(Name=name, SecretString="via-profile")
    (tmp_path / "config").write_text("[profile yosai]\nregion = us-east-1\n")
    (tmp_path / "credentials").write_text(
        "[yosai]\naws_access_key_id = profilekey\naws_secret_access_key = profilesecret\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_PROFILE", "yosai")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    monkeypatch.setenv("SECRET_BACKEND", "aws")
    assert get_secret(name) == "via-profile"


def test_no_credentials_is_an_auth_error(
    aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No credentials in any source: BackendAuthError saying where to put them."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(BackendAuthError, match="no usable AWS credentials") as info:
        get_secret("DB_PASSWORD")
    assert "us-east-1" in str(info.value)


def test_unreachable_endpoint_is_unavailable(
    aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closed port: BackendUnavailableError naming the endpoint, the secret and the region."""
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(BackendUnavailableError) as info:
        get_secret("SECRET_KEY")
    message = str(info.value)
    assert endpoint in message and "'SECRET_KEY'" in message and "us-east-1" in message


def test_endpoint_password_is_not_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    """An endpoint URL with user:password@ is named without its password."""
    endpoint = f"http://user:hunter2-{_uid()}@127.0.0.1:{_closed_port()}"
    settings = AwsSettings(region="us-east-1", endpoint_url=endpoint, max_attempts=1)
    backend = AwsBackend(settings=settings)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(BackendUnavailableError) as info:
        backend.fetch("DB_PASSWORD")
    assert "hunter2" not in str(info.value)


@pytest.fixture(scope="module")
def moto_iam() -> Iterator[tuple[MotoServer, dict[str, Any]]]:
    """A second moto server with its IAM checks on: a reader, a denied user, one secret."""
    require(find_moto_server(), "moto_server", "pip install 'moto[server]'")
    # moto lets the first N requests through unchecked: exactly the 7 set-up calls below.
    server = start_moto(extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": "7"})
    try:
        import boto3

        iam = boto3.session.Session().client(
            "iam",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        server.client().create_secret(Name="IAM_GUARDED", SecretString="guarded-value-1234")
        keys: dict[str, Any] = {}
        for user, action in (("reader", "secretsmanager:*"), ("denied", "s3:ListBucket")):
            iam.create_user(UserName=user)
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}],
            }
            iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
            keys[user] = iam.create_access_key(UserName=user)["AccessKey"]
        yield server, keys
    finally:
        stop_moto(server)


def _as(server: MotoServer, key_id: str, secret: str) -> AwsBackend:
    client = server.client(aws_access_key_id=key_id, aws_secret_access_key=secret)
    return AwsBackend(client)


def test_iam_reader_reads(moto_iam: tuple[MotoServer, dict[str, Any]]) -> None:
    """With moto's IAM checks on, a user allowed secretsmanager:* reads the secret."""
    server, keys = moto_iam
    reader = keys["reader"]
    backend = _as(server, reader["AccessKeyId"], reader["SecretAccessKey"])
    assert backend.fetch("IAM_GUARDED") == "guarded-value-1234"


def test_unknown_access_key_is_an_auth_error(moto_iam: tuple[MotoServer, dict[str, Any]]) -> None:
    """An access key AWS does not know: BackendAuthError (InvalidClientTokenId), key not shown."""
    server, _ = moto_iam
    key_id = f"AKIAUNKNOWN{_uid().upper()}"
    with pytest.raises(BackendAuthError, match="InvalidClientTokenId") as info:
        _as(server, key_id, "whatever-secret").fetch("IAM_GUARDED")
    assert "IAM_GUARDED" in str(info.value) and "us-east-1" in str(info.value)
    assert key_id not in _everything(info.value)


def test_wrong_secret_key_is_an_auth_error(moto_iam: tuple[MotoServer, dict[str, Any]]) -> None:
    """A real key id with a wrong secret key: BackendAuthError (SignatureDoesNotMatch)."""
    server, keys = moto_iam
    key_id, wrong = keys["reader"]["AccessKeyId"], f"wrong-{_uid()}"
    with pytest.raises(BackendAuthError, match="SignatureDoesNotMatch") as info:
        _as(server, key_id, wrong).fetch("IAM_GUARDED")
    text = _everything(info.value)
    assert key_id not in text
    assert wrong not in text


def test_denied_read_is_a_permission_error(moto_iam: tuple[MotoServer, dict[str, Any]]) -> None:
    """A user without secretsmanager:GetSecretValue: BackendPermissionError, also per batch path."""
    server, keys = moto_iam
    denied = keys["denied"]
    backend = _as(server, denied["AccessKeyId"], denied["SecretAccessKey"])
    with pytest.raises(BackendPermissionError, match="access denied") as info:
        backend.fetch("IAM_GUARDED")
    assert "arn:aws:iam" not in _everything(info.value)  # moto's text (the user's ARN) dropped
    results = backend.fetch_many(["IAM_GUARDED", "OTHER"])
    assert all(isinstance(r, BackendPermissionError) for r in results.values())


# -- errors injected into a real botocore client -----------------------------------------------


def test_throttling_is_retried_with_backoff_then_succeeds(moto_server: MotoServer) -> None:
    """Two ThrottlingExceptions, then an answer: the value, after two growing backoff sleeps."""
    name = f"THROTTLED_{_uid()}"
    moto_server.client().create_secret(Name=name, SecretString="after-throttling")
    sleeps: list[float] = []
    backend = AwsBackend(moto_server.client(), sleep=sleeps.append, backoff_seconds=0.2)
    injected = inject_error(backend.client, "GetSecretValue", "ThrottlingException", times=2)
    assert backend.fetch(name) == "after-throttling"
    assert injected == [2] and len(sleeps) == 2
    assert 0.1 <= sleeps[0] <= 0.2 and 0.2 <= sleeps[1] <= 0.4


def test_throttling_that_persists_is_unavailable(moto_server: MotoServer) -> None:
    """Throttled on every try: BackendUnavailableError after a bounded number of tries."""
    sleeps: list[float] = []
    backend = AwsBackend(moto_server.client(), sleep=sleeps.append, throttle_retries=3)
    calls = CallLog(backend.client)
    inject_error(backend.client, "GetSecretValue", "ThrottlingException")
    with pytest.raises(BackendUnavailableError, match=r"ThrottlingException.*after 4 tries"):
        backend.fetch("ANY_SECRET")
    assert calls.count() == 4 and len(sleeps) == 3


def test_botocore_standard_retries_throttled_http_answers(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our client uses botocore's standard retry mode: a throttled HTTP answer is retried by it."""
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    name = f"STD_{_uid()}"
    moto_server.client().create_secret(Name=name, SecretString="standard-mode")
    settings = AwsSettings(
        region="us-east-1", endpoint_url=moto_server.endpoint_url, max_attempts=2
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    backend = AwsBackend(settings=settings, throttle_retries=0)
    sent = [0]

    class _Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield b'{"__type": "ThrottlingException", "message": "slow down"}'

    def first_is_throttled(**_: Any) -> Any:
        sent[0] += 1
        if sent[0] == 1:
            headers = HTTPHeaders()
            headers["x-amzn-errortype"] = "ThrottlingException"
            return AWSResponse("http://x", 400, headers, _Raw())
        return None

    backend.client.meta.events.register("before-send.secrets-manager.*", first_is_throttled)
    assert backend.fetch(name) == "standard-mode"
    assert sent[0] == 2


@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        ("AccessDeniedException", BackendPermissionError, "access denied"),
        ("DecryptionFailure", BackendError, "KMS key"),
        ("ExpiredTokenException", BackendAuthError, "renew expired"),
        ("UnrecognizedClientException", BackendAuthError, "credentials were refused"),
        ("InternalServiceError", BackendUnavailableError, "unavailable"),
    ],
)
def test_injected_aws_errors_are_translated(
    moto_server: MotoServer, code: str, error: type[Exception], words: str
) -> None:
    """Each AWS error code becomes our error type, naming code, secret and region."""
    backend = AwsBackend(moto_server.client(), sleep=lambda _: None)
    inject_error(backend.client, "GetSecretValue", code)
    with pytest.raises(error) as info:
        backend.fetch("prod/db")
    message = str(info.value)
    assert code in message and words in message
    assert "'prod/db' (AWSCURRENT) in us-east-1" in message
    assert str(info.value.__cause__).count(code) >= 1  # the scrubbed cause keeps the code


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without boto3, building the backend says: pip install 'yosai-secrets[aws]'."""
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(MissingDependencyError, match=r"yosai-secrets\[aws\]") as info:
        AwsBackend.from_environ({})
    assert info.value.package == "boto3"


def test_importing_the_library_does_not_import_boto3() -> None:
    """Importing yosai_secrets and its backend registry leaves boto3 unimported."""
    import subprocess

    code = (
        "import sys, yosai_secrets, yosai_secrets.backends, yosai_secrets.backends.aws;"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- the canary ----------------------------------------------------------------------------------


def test_no_message_or_log_line_holds_a_value_or_a_credential(
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    canary: str,
    root_logger_capture: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With DEBUG logging on (botocore's too), no value, key id, secret key or token shows."""
    key_id = f"AKIA{uuid.uuid4().hex[:16].upper()}"
    secret_key, token = f"sk-{canary}-key", f"tok-{canary}-session"
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    monkeypatch.setenv("SECRET_BACKEND", "aws")
    prefix = _uid()
    value = f"value-{canary}"
    admin = moto_server.client()
    admin.create_secret(Name=f"{prefix}/plain", SecretString=value)
    admin.create_secret(Name=f"{prefix}/json", SecretString=json.dumps({"k": value}))
    caplog.set_level(logging.DEBUG, logger="botocore")  # restored after the test
    manager = SecretManager()
    backend = manager.backend
    assert isinstance(backend, AwsBackend)
    assert manager.get(f"{prefix}/plain") == value
    assert (
        manager.get_many([f"{prefix}/json#k", f"{prefix}/json#nope", f"{prefix}/x"])[
            f"{prefix}/json#k"
        ]
        == value
    )
    errors: list[BaseException] = []
    for key in (f"{prefix}/json#nope", f"{prefix}/missing"):
        with pytest.raises(ConfigurationError) as info:
            manager.get(key)
        errors.append(info.value)
    # AWS error texts may quote anything: make them quote the canaries, and check they are gone.
    leaky = f"signature for {key_id} / {secret_key} / {token} / {value}"
    for code in ("InvalidSignatureException", "ThrottlingException", "DecryptionFailure"):
        probe = AwsBackend(moto_server.client(), sleep=lambda _: None)
        inject_error(probe.client, "GetSecretValue", code, message=leaky)
        with pytest.raises(BackendError) as failed:
            probe.fetch(f"{prefix}/plain")
        errors.append(failed.value)
    assert any("botocore" in line for line in root_logger_capture)  # DEBUG really was on
    shown = "\n".join(
        [*root_logger_capture, *map(_everything, errors), repr(manager), repr(backend)]
    )
    shown += manager.describe(f"{prefix}/plain") + repr(backend.settings)
    for needle in (value, key_id, secret_key, token, canary):
        assert needle not in shown
