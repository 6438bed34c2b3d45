"""Secret files that are not what they seem: FIFOs, devices, escaping links, blanks, BOMs, NULs."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from yosai_secrets.backends.env import EnvBackend
from yosai_secrets.backends.file import FileBackend, read_secret_file
from yosai_secrets.errors import ConfigurationError, SecretFileError
from yosai_secrets.manager import SecretManager


def run_within(seconds: float, fn: object) -> object:
    """Call ``fn`` in a thread; fail if it has not returned within ``seconds``."""
    out: list[object] = []

    def target() -> None:
        try:
            out.append(fn())  # type: ignore[operator]
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the read blocked"
    return out[0]


@pytest.mark.parametrize("where", ["secrets-dir", "name-file", "file-ref"])
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, where: str) -> None:
    """A FIFO never blocks a read (nor a readiness probe): it is refused as not a regular file."""
    secrets_dir = tmp_path / "run-secrets"
    secrets_dir.mkdir()
    fifo = secrets_dir / "db_password"
    os.mkfifo(fifo)
    environ = {"SECRETS_DIR": str(secrets_dir)}
    if where == "name-file":
        environ["DB_PASSWORD_FILE"] = str(fifo)
    key = f"file:{fifo}" if where == "file-ref" else "DB_PASSWORD"
    outcome = run_within(5, lambda: SecretManager("env", environ=environ).get(key))
    assert isinstance(outcome, SecretFileError) and "FIFO" in str(outcome)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_devices_are_refused(device: str) -> None:
    """A device named by a file: reference is not read (no 64 KiB of zeros as a secret)."""
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    with pytest.raises(SecretFileError, match="device"):
        FileBackend().fetch(device)


def test_a_link_leaving_the_secrets_directory_is_refused(tmp_path: Path) -> None:
    """A link out of the secrets directory is refused; one inside (Kubernetes ..data) is read."""
    outside = tmp_path / "elsewhere"
    outside.write_text("outside-value\n")
    secrets_dir = tmp_path / "run-secrets"
    secrets_dir.mkdir()
    (secrets_dir / "db_password").symlink_to(outside)
    backend = EnvBackend({}, secrets_dir=secrets_dir)
    with pytest.raises(SecretFileError, match="outside"):
        backend.fetch("DB_PASSWORD")
    data = secrets_dir / "..2026_11_29_10_00_00.1"
    data.mkdir()
    (data / "secret_key").write_text("inside-value\n")
    (secrets_dir / "..data").symlink_to(data.name)
    (secrets_dir / "secret_key").symlink_to("..data/secret_key")
    assert backend.fetch("SECRET_KEY") == "inside-value"


@pytest.mark.parametrize("content", ["", "\n", "\r\n", "   \n", "\t\n\n", "\ufeff\n"])
def test_an_empty_or_blank_file_is_an_error_not_a_secret(tmp_path: Path, content: str) -> None:
    """Empty, whitespace-only, newline-only (or BOM-only) files are refused, naming the file."""
    path = tmp_path / "db_password"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SecretFileError, match="empty") as info:
        read_secret_file(path)
    assert str(path) in str(info.value)


def test_a_byte_order_mark_is_not_part_of_the_secret(tmp_path: Path) -> None:
    """A UTF-8 BOM (as some Windows editors write) is stripped."""
    path = tmp_path / "db_password"
    path.write_bytes(b"\xef\xbb\xbfs3cret-value\r\n")
    assert read_secret_file(path) == "s3cret-value"


@pytest.mark.parametrize("key", ["file:/tmp/x\x00y", "file:\x00"])
def test_a_nul_in_a_file_reference_is_a_clear_error(key: str) -> None:
    """A NUL byte in a file: path is a ConfigurationError, not a ValueError."""
    with pytest.raises(ConfigurationError, match="NUL"):
        SecretManager("env", environ={}).get(key)


@pytest.mark.parametrize("value", ["hunter2-CANARY", "pass word CANARY", "rel/ative-CANARY"])
def test_a_name_file_holding_the_secret_itself_is_not_echoed(value: str) -> None:
    """DB_PASSWORD_FILE=<the password> by mistake: the error and describe() never show it."""
    environ = {"DB_PASSWORD_FILE": value}
    manager = SecretManager("env", environ=environ)
    with pytest.raises(SecretFileError) as info:
        manager.get("DB_PASSWORD")
    assert "CANARY" not in str(info.value) and "DB_PASSWORD_FILE" in str(info.value)
    assert "CANARY" not in manager.describe("DB_PASSWORD")


def test_a_real_missing_path_is_still_named(tmp_path: Path) -> None:
    """An absolute path in an existing directory is shown: it helps, and is not a secret."""
    missing = tmp_path / "db_password"
    with pytest.raises(SecretFileError, match=str(missing)):
        SecretManager("env", environ={"DB_PASSWORD_FILE": str(missing)}).get("DB_PASSWORD")


def test_the_name_memo_stays_bounded(tmp_path: Path) -> None:
    """Looking up 5,000 distinct missing names keeps the per-name memo bounded."""
    backend = EnvBackend({}, secrets_dir=tmp_path)
    for index in range(5000):
        backend.describe(f"MISSING_{index}")
    assert len(backend._file_memo) <= 1024
