"""yosai-secrets encrypt / decrypt / generate-key: stdin only, key rotation, clean errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from yosai_secrets.cli import cli
from yosai_secrets.crypto import FernetBox


def test_generate_key_prints_a_valid_fernet_key() -> None:
    """generate-key prints one key that Fernet accepts, different each time."""
    runner = CliRunner()
    first = runner.invoke(cli, ["generate-key"]).output.strip()
    second = runner.invoke(cli, ["generate-key"]).output.strip()
    Fernet(first.encode())
    assert first != second


def test_encrypt_then_decrypt_round_trip(monkeypatch: pytest.MonkeyPatch, canary: str) -> None:
    """A value piped to encrypt comes back from decrypt; the token does not contain it."""
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("FERNET_KEY", key)
    runner = CliRunner()
    encrypted = runner.invoke(cli, ["encrypt"], input=canary + "\n")
    assert encrypted.exit_code == 0, encrypted.output
    token = encrypted.output.strip()
    assert token.startswith("enc:gAAAAA")
    assert canary not in encrypted.output
    assert FernetBox(key).decrypt(token, name="t") == canary
    decrypted = runner.invoke(cli, ["decrypt"], input=token + "\n")
    assert decrypted.exit_code == 0
    assert decrypted.output == canary + "\n"


def test_no_prefix_gives_a_bare_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """--no-prefix prints the bare Fernet token."""
    monkeypatch.setenv("FERNET_KEY", Fernet.generate_key().decode())
    result = CliRunner().invoke(cli, ["encrypt", "--no-prefix"], input="value-1234")
    assert result.output.startswith("gAAAAA")


def test_rotation_old_key_still_decrypts(monkeypatch: pytest.MonkeyPatch) -> None:
    """With FERNET_KEY=NEW,OLD a token made with OLD decrypts; new tokens use NEW."""
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = Fernet(old).encrypt(b"old-value-99").decode()
    monkeypatch.setenv("FERNET_KEY", f"{new.decode()},{old.decode()}")
    runner = CliRunner()
    assert runner.invoke(cli, ["decrypt"], input=token).output == "old-value-99\n"
    fresh = runner.invoke(cli, ["encrypt", "--no-prefix"], input="new-value-99").output.strip()
    assert Fernet(new).decrypt(fresh.encode()) == b"new-value-99"


def test_value_on_argv_is_refused_without_echo(
    monkeypatch: pytest.MonkeyPatch, canary: str
) -> None:
    """A value given as an argument is refused, and the refusal does not repeat it."""
    monkeypatch.setenv("FERNET_KEY", Fernet.generate_key().decode())
    for command in ("encrypt", "decrypt"):
        result = CliRunner().invoke(cli, [command, canary])
        assert result.exit_code == 2
        assert "never taken from the command line" in result.output
        assert canary not in result.output


def test_missing_fernet_key_is_a_clear_error(canary: str) -> None:
    """Without FERNET_KEY, encrypt exits 2 and says how to get a key."""
    result = CliRunner().invoke(cli, ["encrypt"], input=canary)
    assert result.exit_code == 2
    assert "FERNET_KEY is not set" in result.output
    assert "generate-key" in result.output
    assert canary not in result.output


def test_wrong_key_does_not_decrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token made with another key is an error, exit 2, with no traceback."""
    token = Fernet(Fernet.generate_key()).encrypt(b"x-value-123").decode()
    monkeypatch.setenv("FERNET_KEY", Fernet.generate_key().decode())
    result = CliRunner().invoke(cli, ["decrypt"], input=token)
    assert result.exit_code == 2
    assert "does not decrypt" in result.output
    assert "Traceback" not in result.output


def test_empty_input_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Encrypting nothing is an error rather than a token of the empty string."""
    monkeypatch.setenv("FERNET_KEY", Fernet.generate_key().decode())
    result = CliRunner().invoke(cli, ["encrypt"], input="")
    assert result.exit_code == 2
    assert "empty" in result.output
