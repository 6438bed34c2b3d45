"""The env source: variables, NAME_FILE, Docker secrets, development files, and bad files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from yosai_secrets import ConfigurationError, SecretManager, SecretNotFoundError, get_secret
from yosai_secrets.backends.env import EnvBackend
from yosai_secrets.errors import SecretFileError


@pytest.fixture
def secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "run-secrets"
    folder.mkdir(exist_ok=True)
    monkeypatch.setenv("SECRETS_DIR", str(folder))
    return folder


def test_environment_variable_first(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The variable NAME wins over every file."""
    (secrets_dir / "db_password").write_text("from-docker-secret\n")
    monkeypatch.setenv("DB_PASSWORD", "from-variable")
    assert get_secret("DB_PASSWORD") == "from-variable"


def test_empty_variable_counts_as_unset(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty NAME falls through to the files (a blank line in a .env file is not a secret)."""
    (secrets_dir / "db_password").write_text("from-docker-secret\n")
    monkeypatch.setenv("DB_PASSWORD", "")
    assert get_secret("DB_PASSWORD") == "from-docker-secret"


def test_name_file_convention(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NAME_FILE names a file whose content, less one trailing newline, is the value."""
    target = tmp_path / "pw"
    target.write_text("file-value\n\n")
    monkeypatch.setenv("DB_PASSWORD_FILE", str(target))
    assert get_secret("DB_PASSWORD") == "file-value\n"


def test_name_file_missing_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A NAME_FILE that points nowhere is an error naming the variable and the file."""
    monkeypatch.setenv("DB_PASSWORD_FILE", str(tmp_path / "nope"))
    with pytest.raises(SecretFileError, match=r"DB_PASSWORD_FILE names .*nope"):
        get_secret("DB_PASSWORD")


def test_docker_secret_lower_then_exact(secrets_dir: Path) -> None:
    """The Docker secrets directory is read as name in lower case, then exactly NAME."""
    (secrets_dir / "API_TOKEN").write_text("exact-name")
    assert get_secret("API_TOKEN") == "exact-name"
    (secrets_dir / "api_token").write_text("lower-name")
    SecretManager().invalidate()
    assert SecretManager().get("API_TOKEN") == "lower-name"


def test_crlf_newline_stripped(secrets_dir: Path) -> None:
    """One trailing CRLF is stripped too (files written on Windows)."""
    (secrets_dir / "k").write_bytes(b"value\r\n")
    assert get_secret("K") == "value"


def test_development_reads_repository_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In development only, secrets/<name>.txt is consulted last."""
    local = tmp_path / "repo-secrets"
    local.mkdir()
    (local / "db_password.txt").write_text("local-dev\n")
    monkeypatch.setenv("YOSAI_LOCAL_SECRETS_DIR", str(local))
    with pytest.raises(SecretNotFoundError):
        SecretManager().get("DB_PASSWORD")
    monkeypatch.setenv("YOSAI_ENV", "development")
    assert SecretManager().get("DB_PASSWORD") == "local-dev"


def test_not_found_names_every_place(secrets_dir: Path) -> None:
    """A missing secret's error names the key and every place looked at."""
    with pytest.raises(SecretNotFoundError) as caught:
        get_secret("MISSING_ONE")
    message = str(caught.value)
    assert "MISSING_ONE" in message
    assert "environment variable MISSING_ONE" in message
    assert "MISSING_ONE_FILE" in message
    assert str(secrets_dir / "missing_one") in message
    assert isinstance(caught.value, ConfigurationError)
    assert caught.value.places


def test_default_is_returned_only_when_missing(secrets_dir: Path) -> None:
    """get_secret(key, default) returns the default for a missing key."""
    assert get_secret("MISSING_TWO", "fallback") == "fallback"


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "..", "x\\y", "~root", "ok\x00no"])
def test_unsafe_names_are_refused(secrets_dir: Path, name: str) -> None:
    """A name with a path separator or '..' never reaches the file system."""
    with pytest.raises(SecretFileError, match="cannot be used as a file name"):
        get_secret(name)


def test_binary_file_refused_without_content(secrets_dir: Path) -> None:
    """A file that is not UTF-8 is an error naming the file, never echoing its bytes."""
    (secrets_dir / "bin_secret").write_bytes(b"\xff\xfe\x00binary-canary\x9f")
    with pytest.raises(SecretFileError) as caught:
        get_secret("BIN_SECRET")
    assert "not UTF-8" in str(caught.value)
    assert "bin_secret" in str(caught.value)
    assert "canary" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_huge_file_refused(secrets_dir: Path) -> None:
    """A file over 64 KiB is refused with its size named."""
    (secrets_dir / "huge").write_text("x" * (64 * 1024 + 1))
    with pytest.raises(SecretFileError, match="65537 bytes"):
        get_secret("HUGE")


def test_exactly_64_kib_is_fine(secrets_dir: Path) -> None:
    """The limit is inclusive: 64 KiB is accepted."""
    (secrets_dir / "big").write_text("y" * (64 * 1024))
    assert len(get_secret("BIG")) == 64 * 1024


def test_directory_refused(secrets_dir: Path) -> None:
    """A directory where a secret file should be is a clear error."""
    (secrets_dir / "dir_secret").mkdir()
    with pytest.raises(SecretFileError, match="is a directory"):
        get_secret("DIR_SECRET")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file; permissions cannot be denied")
def test_unreadable_file_refused(secrets_dir: Path) -> None:  # pragma: no cover - non-root only
    """An unreadable file is an error naming it and suggesting its permissions."""
    target = secrets_dir / "locked"
    target.write_text("v")
    target.chmod(0)
    with pytest.raises(SecretFileError, match="permissions"):
        get_secret("LOCKED")


def test_unreadable_file_refused_as_root(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read error (here: a FIFO-free stand-in, a path through a file) names the file."""
    blocker = secrets_dir / "blocker"
    blocker.write_text("not a directory")
    monkeypatch.setenv("TOKEN_FILE", str(blocker / "inner"))
    with pytest.raises(SecretFileError, match="blocker/inner"):
        get_secret("TOKEN")


def test_describe_says_where_without_value(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch, canary: str
) -> None:
    """describe() names the variable or file, never the value."""
    monkeypatch.setenv("SECRET_KEY", canary)
    (secrets_dir / "db_password").write_text(canary)
    backend = EnvBackend()
    assert backend.describe("SECRET_KEY") == "env SECRET_KEY"
    assert backend.describe("DB_PASSWORD") == f"Docker secret {secrets_dir / 'db_password'}"
    assert canary not in backend.describe("SECRET_KEY")
