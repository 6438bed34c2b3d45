"""SecretManager and the process-wide get_secret: backends, references, fields, decryption."""

from __future__ import annotations

import pytest

from yosai_secrets import (
    ConfigurationError,
    DecryptionError,
    Secret,
    SecretManager,
    SecretNotFoundError,
    UnknownBackendError,
    get_secret,
    invalidate_secret,
)
from yosai_secrets.crypto import FernetBox, generate_key
from yosai_secrets.manager import default_manager
from yosai_secrets.testing import MemoryBackend


def test_default_backend_is_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """With SECRET_BACKEND unset, get_secret reads the environment."""
    monkeypatch.setenv("DB_PASSWORD", "env-password")
    assert get_secret("DB_PASSWORD") == "env-password"
    assert default_manager().backend.name == "env"


def test_default_manager_is_built_once() -> None:
    """The process-wide manager is built on first use and then reused."""
    assert default_manager() is default_manager()


def test_unknown_backend_lists_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown SECRET_BACKEND is a ConfigurationError listing the valid names."""
    monkeypatch.setenv("SECRET_BACKEND", "etcd")
    with pytest.raises(UnknownBackendError) as caught:
        get_secret("DB_PASSWORD")
    assert isinstance(caught.value, ConfigurationError)
    for name in ("env", "vault", "aws", "etcd"):
        assert name in str(caught.value)


def test_invalidate_secret_rereads(monkeypatch: pytest.MonkeyPatch) -> None:
    """invalidate_secret(key) makes the next get_secret read the source again."""
    monkeypatch.setenv("SECRET_KEY", "old-secret-key")
    assert get_secret("SECRET_KEY") == "old-secret-key"
    monkeypatch.setenv("SECRET_KEY", "new-secret-key")
    assert get_secret("SECRET_KEY") == "old-secret-key"
    assert invalidate_secret("SECRET_KEY") == 1
    assert get_secret("SECRET_KEY") == "new-secret-key"
    monkeypatch.setenv("SECRET_KEY", "newest-secret-key")
    invalidate_secret()
    assert get_secret("SECRET_KEY") == "newest-secret-key"


def test_invalidate_before_any_read_is_harmless() -> None:
    """invalidate_secret() with no manager built yet does nothing and builds nothing."""
    assert invalidate_secret() == 0


def test_scheme_reference_uses_its_backend(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """env: and file: references are read by their own backend whatever the default is."""
    monkeypatch.setenv("PLAIN", "from-env")
    target = tmp_path / "token.txt"
    target.write_text("from-file\n")
    manager = SecretManager(MemoryBackend())
    assert manager.get("env:PLAIN") == "from-env"
    assert manager.get(f"file:{target}") == "from-file"


def test_field_selection_and_json() -> None:
    """#field picks a field of a mapping, or a key of a JSON string."""
    manager = SecretManager(
        MemoryBackend({"db": {"password": "pw-value", "port": 5432}, "js": '{"a": "json-a"}'})
    )
    assert manager.get("db#password") == "pw-value"
    assert manager.get("db#port") == "5432"
    assert manager.get("js#a") == "json-a"


def test_missing_field_names_fields_not_values() -> None:
    """A missing field is SecretNotFoundError listing the field names, never the values."""
    manager = SecretManager(MemoryBackend({"db": {"password": "pw-canary-value"}}))
    with pytest.raises(SecretNotFoundError) as caught:
        manager.get("db#user")
    assert "password" in str(caught.value)
    assert "pw-canary-value" not in str(caught.value)


def test_mapping_without_field_is_a_clear_error() -> None:
    """Reading a path of several fields without #field says which fields there are."""
    manager = SecretManager(MemoryBackend({"db": {"password": "pw-canary", "user": "u"}}))
    with pytest.raises(ConfigurationError, match=r"holds several fields \(password, user\)"):
        manager.get("db")


def test_field_of_plain_value_is_refused() -> None:
    """#field on a plain (non-JSON) value is refused without echoing it."""
    manager = SecretManager(MemoryBackend({"p": "plain-canary"}))
    with pytest.raises(ConfigurationError) as caught:
        manager.get("p#x")
    assert "plain-canary" not in str(caught.value)


def test_binary_value_needs_get_bytes() -> None:
    """A binary value is refused by get() and returned by get_bytes()."""
    manager = SecretManager(MemoryBackend({"b": b"\x00\x01"}))
    with pytest.raises(ConfigurationError, match="get_bytes"):
        manager.get("b")
    assert manager.get_bytes("b") == b"\x00\x01"


def test_fernet_values_are_decrypted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Fernet token (bare or enc:) is decrypted with any key of FERNET_KEY."""
    old, new = generate_key(), generate_key()
    token = FernetBox(old).encrypt("decrypted-value")
    monkeypatch.setenv("FERNET_KEY", f"{new},{old}")
    manager = SecretManager(MemoryBackend({"a": token, "b": f"enc:{token}"}))
    assert manager.get("a") == "decrypted-value"
    assert manager.get("b") == "decrypted-value"


def test_bad_token_is_an_error_not_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token that does not decrypt is an error naming the key, never passed on."""
    token = FernetBox(generate_key()).encrypt("x-value")
    monkeypatch.setenv("FERNET_KEY", generate_key())
    manager = SecretManager(MemoryBackend({"a": token}))
    with pytest.raises(DecryptionError, match="'a'"):
        manager.get("a")


def test_encrypted_without_key_is_an_error() -> None:
    """An encrypted value with no FERNET_KEY names FERNET_KEY and the secret."""
    manager = SecretManager(MemoryBackend({"a": "enc:whatever"}))
    with pytest.raises(DecryptionError, match="FERNET_KEY is not set"):
        manager.get("a")


def test_secret_wrapper() -> None:
    """manager.secret() wraps the value so it never shows itself."""
    manager = SecretManager(MemoryBackend({"k": "wrapped-value"}))
    wrapped = manager.secret("k")
    assert isinstance(wrapped, Secret)
    assert wrapped.reveal() == "wrapped-value"
    assert "wrapped-value" not in repr(manager)


def test_get_many_groups_paths() -> None:
    """get_many reads each path once and reports per-key errors without raising."""
    backend = MemoryBackend({"db": {"user": "u-val", "password": "p-val"}, "other": "o-val"})
    manager = SecretManager(backend)
    result = manager.get_many(["db#user", "db#password", "other", "missing"])
    assert result["db#user"] == "u-val"
    assert result["db#password"] == "p-val"
    assert result["other"] == "o-val"
    assert isinstance(result["missing"], SecretNotFoundError)
    assert backend.calls == 3


@pytest.mark.parametrize("key", ["", "   ", "vault:", "env:"])
def test_empty_keys_are_refused(key: str) -> None:
    """Empty keys and references naming nothing are clear errors."""
    with pytest.raises(ConfigurationError):
        SecretManager(MemoryBackend()).get(key)


def test_missing_field_error_names_the_source() -> None:
    """A missing field's error names where the path was read (the backend's description)."""
    manager = SecretManager(MemoryBackend({"db": {"password": "pw-value"}}, name="memo"))
    with pytest.raises(SecretNotFoundError, match=r"memo db field 'user'"):
        manager.get("db#user")


def test_not_found_names_the_requested_key_and_field() -> None:
    """A missing path is reported under the key asked for, with the field, not the bare path."""
    manager = SecretManager(MemoryBackend(name="memo"))
    with pytest.raises(SecretNotFoundError) as caught:
        manager.get("db#password")
    assert caught.value.key == "db#password"
    assert "'db#password'" in str(caught.value)
    assert caught.value.places == ("memo db (field 'password')",)
    result = manager.get_many(["db#password", "db#user"])
    assert isinstance(result["db#user"], SecretNotFoundError)
    assert result["db#user"].key == "db#user"


class _BatchMemory(MemoryBackend):
    """A MemoryBackend with a batch read, like the AWS backend's."""

    def __init__(self, data: dict[str, object]) -> None:
        super().__init__(data, name="batchmem")
        self.batches = 0

    def fetch_many(self, paths: list[str]) -> dict[str, object]:
        self.batches += 1
        results: dict[str, object] = {}
        for path in paths:
            try:
                results[path] = self.fetch(path)
            except ConfigurationError as exc:
                results[path] = exc
        return results


def test_batch_read_serves_stale_values_when_the_backend_fails() -> None:
    """get_many through a batch backend keeps serving cached values during an outage."""
    from yosai_secrets.testing import FakeClock

    backend = _BatchMemory({"a": "value-a", "b": "value-b"})
    clock = FakeClock()
    manager = SecretManager(backend, clock=clock, ttl_seconds=10, max_stale_seconds=100)
    assert manager.get_many(["a", "b"]) == {"a": "value-a", "b": "value-b"}
    assert backend.batches == 1
    backend.failing = True
    clock.advance(11)
    assert manager.get_many(["a", "b"]) == {"a": "value-a", "b": "value-b"}
    clock.advance(200)
    result = manager.get_many(["a", "b"])
    assert all(isinstance(v, ConfigurationError) for v in result.values())
