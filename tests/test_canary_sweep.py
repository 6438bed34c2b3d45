"""The canary leak sweep, end to end: a unique value in every backend, hunted in every output.

The plugin ``tests/canary_sweep.py`` scans what pytest captures and the files a session leaves; the
tests here look where it cannot: exception chains and tracebacks rendered with their frames'
locals (what an error reporter such as Sentry sends), DEBUG logs of every library, CLI output
captured by click's runner, HTTP answers, kubectl's arguments, and a real OpenBao audit device
(declared by the session's server: the plugin sweeps it for every Vault test of the session).
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.canary_sweep import CANARY
from tests.rotation_support import install_kubectl_stub, kubectl_calls, make_manifest
from tests.servers.openbao import OpenBaoServer, api
from yosai_secrets import SecretManager
from yosai_secrets.cli import cli
from yosai_secrets.errors import YosaiSecretsError

REPO_ROOT = Path(__file__).resolve().parent.parent


def rendered(exc: BaseException) -> str:
    """Everything an error reporter could show: message, repr, the chain, frames with locals."""
    parts = [str(exc), repr(exc)]
    parts += traceback.TracebackException.from_exception(exc, capture_locals=True).format()
    return "".join(parts)


def assert_clean(text: str, where: str) -> None:
    """No canary-shaped value in ``text``."""
    found = CANARY.search(text)
    assert found is None, f"a planted value leaked into {where}"


@contextlib.contextmanager
def debug_logs() -> Iterator[list[str]]:
    """Every record of every library at DEBUG, as an application's handler would render it.

    Entered after a test has planted its values: the test's own writes are not the library's.
    """
    lines: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = _Collect(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def expect_error(call: Callable[[], object]) -> YosaiSecretsError:
    """Run ``call``; return the error of ours it raised."""
    with pytest.raises(YosaiSecretsError) as caught:
        call()
    return caught.value


def test_the_plugin_fails_a_run_whose_test_prints_a_canary(tmp_path: Path) -> None:
    """The sweep itself works: a passing test that prints a canary makes the run fail."""
    (tmp_path / "test_leaky.py").write_text(
        textwrap.dedent(
            """
            def test_leaks(canary):
                print("here it is:", canary)
            """
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.canary_sweep", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "canary leak sweep: 1 hit(s); the run fails" in done.stdout


def test_env_and_file_values_never_leak(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, canary: str
) -> None:
    """Variables, ``*_FILE`` and the secrets directory: reads, errors, reprs, DEBUG logs."""
    secrets_dir = tmp_path / "run-secrets"
    secrets_dir.mkdir()
    (secrets_dir / "db_password").write_text(canary + "-file\n", encoding="utf-8")
    (tmp_path / "key.txt").write_text(canary + "-keyfile", encoding="utf-8")
    monkeypatch.setenv("SECRETS_DIR", str(secrets_dir))
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "key.txt"))
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", canary + "-env")
    monkeypatch.setenv("BROKEN", canary + "-not-json")
    monkeypatch.setenv("FERNET_KEY", "x" * 44)  # malformed: an error that must not show values
    with debug_logs() as lines:
        shown = _read_env_and_files(tmp_path, canary)
    assert_clean(shown, "a repr, a description, an error, its chain or its frames' locals")
    assert_clean("\n".join(lines), "a DEBUG log line")


def _read_env_and_files(tmp_path: Path, canary: str) -> str:
    manager = SecretManager()
    assert manager.get("DB_PASSWORD") == canary + "-file"
    assert manager.get("SECRET_KEY") == canary + "-keyfile"
    assert manager.get("AUTH0_CLIENT_SECRET") == canary + "-env"
    shown = [repr(manager), repr(manager.secret("DB_PASSWORD")), str(manager.stats())]
    shown += [manager.describe(key) for key in ("DB_PASSWORD", "SECRET_KEY", "AUTH0_CLIENT_SECRET")]
    for call in (
        lambda: manager.get("env:BROKEN#field"),
        lambda: manager.get("MISSING_" + "X"),
        lambda: SecretManager().get(f"file:{tmp_path}/key.txt#field"),
    ):
        shown.append(rendered(expect_error(call)))
    return "\n".join(shown)


def test_vault_values_never_leak(vault_env: OpenBaoServer, canary: str) -> None:
    """Vault reads and errors: no value in errors, frames, DEBUG logs or OpenBao's audit log."""
    status, _ = api(
        vault_env.addr,
        "POST",
        "secret/data/sweep",
        {"data": {"password": canary + "-vault", "nested": json.dumps({"a": canary})}},
        token=vault_env.token,
    )
    assert status == 200
    with debug_logs() as lines:
        manager = SecretManager()
        assert manager.get("vault:secret/data/sweep#password") == canary + "-vault"
        for call in (
            lambda: manager.get("vault:secret/data/sweep#missing"),
            lambda: manager.get("vault:secret/data/sweep#nested.b"),
            lambda: manager.get("vault:secret/data/absent#password"),
        ):
            assert_clean(rendered(expect_error(call)), "a Vault error, its chain or frames")
    assert_clean("\n".join(lines), "a DEBUG log line")
    assert vault_env.audit_log is not None, "the session OpenBao declares a file audit device"
    audit = vault_env.audit_log.read_text(encoding="utf-8")
    assert "secret/data/sweep" in audit  # the device saw the reads...
    assert_clean(audit, "OpenBao's audit log")  # ...and HMACed the values


def test_aws_values_never_leak(aws_env: object, canary: str) -> None:
    """AWS reads and errors, botocore's DEBUG lines included: no value anywhere."""
    import boto3

    client = boto3.client("secretsmanager")
    client.create_secret(Name="sweep/plain", SecretString=canary + "-aws")
    client.create_secret(Name="sweep/json", SecretString=json.dumps({"password": canary}))
    with debug_logs() as lines:
        manager = SecretManager()
        assert manager.get("aws-secrets:sweep/plain") == canary + "-aws"
        for call in (
            lambda: manager.get("aws-secrets:sweep/plain#field"),
            lambda: manager.get("aws-secrets:sweep/json#missing"),
            lambda: manager.get("aws-secrets:sweep/absent"),
        ):
            assert_clean(rendered(expect_error(call)), "an AWS error, its chain or frames")
    assert_clean("\n".join(lines), "a DEBUG log line (ours or botocore's)")


def test_cli_and_kubectl_never_see_a_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, canary: str
) -> None:
    """`check`, `get`, `status` and a rotation through the kubectl stand-in (no cluster here)."""
    monkeypatch.setenv("YOSAI_ENV", "development")
    monkeypatch.setenv("SECRET_KEY", canary + "-0123456789abcdefghijklmnopqrstuv")
    monkeypatch.setenv("DB_PASSWORD", canary + "-db")
    manifest = make_manifest(tmp_path, SECRET_KEY=canary + "-manifest-key-0123456789abcdef")
    log = install_kubectl_stub(tmp_path, monkeypatch)
    runner = CliRunner()
    outputs = []
    for args in (
        ["check"],
        ["get", "DB_PASSWORD"],
        ["get", "DB_PASSWORD", "--json"],
        ["status", "--manifest", str(manifest)],
        ["rotate", "--manifest", str(manifest), "--keys", "SECRET_KEY"],
    ):
        result = runner.invoke(cli, args)
        outputs.append(result.output)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            outputs.append(rendered(result.exception))
    assert_clean("\n".join(outputs), "CLI output")
    arguments = " ".join(" ".join(argv) for argv in kubectl_calls(log))
    assert kubectl_calls(log), "the rotation called kubectl"
    assert_clean(arguments, "kubectl's arguments")
    rotated = manifest.read_text(encoding="utf-8")  # the old key kept only as the fallback
    assert len(CANARY.findall(rotated)) == 1 and "SECRET_KEY_FALLBACKS" in rotated


def test_configuration_errors_never_leak(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, canary: str
) -> None:
    """A production configuration that resolves some secrets and fails on others."""
    from yosai_secrets import SecureConfigManager

    (tmp_path / "production.yaml").write_text(
        textwrap.dedent(
            """
            security:
              secret_key: env:SWEEP_KEY
            database:
              password: env:SWEEP_DB#password
            auth0:
              client_secret: env:SWEEP_AUTH0
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("SWEEP_KEY", canary + "-k3Y9xQ2mW7pL5vN8rT1zB4cD6fG0hJ")
    monkeypatch.setenv("SWEEP_DB", json.dumps({"password": canary, "user": "u"}) + "garbage")
    monkeypatch.setenv("SWEEP_AUTH0", canary + "-auth0")
    with debug_logs() as lines:
        error = expect_error(lambda: SecureConfigManager(tmp_path, env="production"))
        assert "DB_PASSWORD" in str(error) or "database.password" in str(error)
        assert_clean(rendered(error), "a configuration error, its chain or its frames' locals")
    assert_clean("\n".join(lines), "a DEBUG log line")
