"""VaultBackend.fetch_many against a real ``bao server -dev``: one GET per path, concurrently."""

from __future__ import annotations

import http.client
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers.openbao import OpenBaoServer, free_port, start_openbao, stop_openbao
from yosai_secrets.backends.vault import VaultBackend
from yosai_secrets.backends.vault_settings import VaultSettings
from yosai_secrets.errors import (
    BackendAuthError,
    BackendTLSError,
    BackendUnavailableError,
    ConfigurationError,
    SecretNotFoundError,
)
from yosai_secrets.manager import SecretManager

pytestmark = pytest.mark.integration


def unique() -> str:
    """A path segment no other test uses."""
    return "t" + uuid.uuid4().hex[:12]


def no_sleep(_seconds: float) -> None:
    """Retry waits that cost no time."""


def backend_for(server: OpenBaoServer, **overrides: str) -> VaultBackend:
    """A backend built from the environment a user would set for ``server``."""
    environ = {"VAULT_ADDR": server.addr, "VAULT_TOKEN": server.token, **overrides}
    return VaultBackend(settings=VaultSettings.from_environ(environ), sleep=no_sleep)


@pytest.fixture
def gets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The URL of every HTTP GET this process sends (observed, not altered)."""
    seen: list[str] = []
    original = http.client.HTTPConnection.putrequest

    def counting(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if method == "GET":
            seen.append(url)
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(http.client.HTTPConnection, "putrequest", counting)
    yield seen


def test_fetch_many_returns_what_fetch_returns(vault_env: OpenBaoServer, gets: list[str]) -> None:
    """KV v2 raw and logical paths and KV v1 paths read in one batch equal single reads."""
    server = vault_env
    one, two, three = unique(), unique(), unique()
    server.api("PUT", f"secret/data/{one}", {"data": {"a": "1", "b": "2"}})
    server.api("PUT", f"secret/data/{two}", {"data": {"c": "3"}})
    server.api("PUT", f"kv/{three}", {"d": "4"})
    backend = backend_for(server)
    paths = [
        backend.locate(f"secret/data/{one}#a").path,
        backend.locate(f"secret/{two}#c").path,  # logical form: resolved by locate first
        backend.locate(f"kv/{three}#d").path,
    ]
    expected = {path: backend.fetch(path) for path in paths}
    gets.clear()
    assert backend.fetch_many(paths) == expected
    assert sorted(gets) == sorted(f"/v1/{path}" for path in paths)  # one GET per path
    assert backend.batch_failures == 0
    assert expected[paths[1]] == {"c": "3"} and expected[paths[2]] == {"d": "4"}


def test_missing_path_is_not_found_for_that_path_only(
    vault_env: OpenBaoServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing path among several gives SecretNotFoundError for it, counted and logged."""
    good, missing = unique(), unique()
    vault_env.api("PUT", f"secret/data/{good}", {"data": {"k": "v"}})
    backend = backend_for(vault_env)
    with caplog.at_level(logging.DEBUG, logger="yosai_secrets.backends.vault"):
        results = backend.fetch_many([f"secret/data/{good}", f"secret/data/{missing}"])
    assert results[f"secret/data/{good}"] == {"k": "v"}
    error = results[f"secret/data/{missing}"]
    assert isinstance(error, SecretNotFoundError)
    assert vault_env.addr in str(error) and missing in str(error)
    assert backend.batch_failures == 1
    manager = SecretManager(backend)
    manager.get_many([f"secret/data/{good}#k", f"secret/data/{missing}#k"])
    assert manager.stats().errors == 1
    assert any("batch read" in r.getMessage() and missing in r.getMessage() for r in caplog.records)


def test_bad_token_gives_an_auth_error_per_path(vault_env: OpenBaoServer) -> None:
    """With an invalid token every path's result is BackendAuthError without the token."""
    bogus = "s." + uuid.uuid4().hex
    name = unique()
    vault_env.api("PUT", f"kv/{name}", {"k": "v"})
    backend = backend_for(vault_env, VAULT_TOKEN=bogus)
    results = backend.fetch_many([f"kv/{name}", f"kv/{unique()}"])
    assert len(results) == 2
    for error in results.values():
        assert isinstance(error, BackendAuthError)
        assert bogus not in str(error) and "invalid, expired or revoked" in str(error)


def test_revoked_token_gives_errors(vault_env: OpenBaoServer) -> None:
    """A token revoked after a first batch makes the next batch's paths fail, not hang."""
    client = vault_env.client()
    token = client.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    name = unique()
    vault_env.api("PUT", f"kv/{name}", {"k": "v"})
    backend = backend_for(vault_env, VAULT_TOKEN=token)
    assert backend.fetch_many([f"kv/{name}", f"kv/{name}x"])[f"kv/{name}"] == {"k": "v"}
    client.auth.token.revoke(token)
    results = backend.fetch_many([f"kv/{name}", f"kv/{unique()}"])
    assert all(isinstance(error, BackendAuthError) for error in results.values())


def test_get_many_over_ten_paths_sends_ten_gets(vault_env: OpenBaoServer, gets: list[str]) -> None:
    """SecretManager.get_many over 10 cold paths makes one batch call of 10 GETs, no more."""
    names = [unique() for _ in range(10)]
    for index, name in enumerate(names):
        vault_env.api("PUT", f"secret/data/{name}", {"data": {"a": f"a{index}", "b": f"b{index}"}})
    backend = backend_for(vault_env)
    manager = SecretManager(backend)
    keys = [f"secret/data/{name}#{field}" for name in names for field in "ab"]
    gets.clear()
    got = manager.get_many(keys)
    assert got == {f"secret/data/{n}#{f}": f"{f}{i}" for i, n in enumerate(names) for f in "ab"}
    reads = [url for url in gets if url.startswith("/v1/secret/data/")]
    assert sorted(reads) == sorted(f"/v1/secret/data/{name}" for name in names)
    assert manager.stats().backend_calls == 1
    gets.clear()
    assert manager.get_many(keys) == got
    assert gets == []  # all cached


def test_more_paths_than_the_pool_holds(vault_env: OpenBaoServer) -> None:
    """Forty paths (more than the 16 connections in flight at once) are all read."""
    names = [unique() for _ in range(40)]
    for name in names:
        vault_env.api("PUT", f"kv/{name}", {"n": name})
    results = backend_for(vault_env).fetch_many([f"kv/{name}" for name in names])
    assert results == {f"kv/{name}": {"n": name} for name in names}


def test_path_needing_quoting_takes_the_ordinary_read(vault_env: OpenBaoServer) -> None:
    """A path with a space is read (by the ordinary, quoting path) beside plain ones."""
    plain, spaced = unique(), unique() + " x"
    vault_env.client().secrets.kv.v1.create_or_update_secret(
        path=spaced, secret={"k": "spaced"}, mount_point="kv"
    )
    vault_env.api("PUT", f"kv/{plain}", {"k": "plain"})
    results = backend_for(vault_env).fetch_many([f"kv/{plain}", f"kv/{spaced}"])
    assert results == {f"kv/{plain}": {"k": "plain"}, f"kv/{spaced}": {"k": "spaced"}}


def test_unreachable_server_is_unavailable_per_path() -> None:
    """Nothing listening: each path's result is BackendUnavailableError naming the address."""
    addr = f"http://127.0.0.1:{free_port()}"
    settings = VaultSettings.from_environ(
        {"VAULT_ADDR": addr, "VAULT_TOKEN": "t", "VAULT_MAX_RETRIES": "0"}
    )
    results = VaultBackend(settings=settings, sleep=no_sleep).fetch_many(["kv/a", "kv/b"])
    assert set(results) == {"kv/a", "kv/b"}
    for error in results.values():
        assert isinstance(error, BackendUnavailableError) and addr in str(error)


def test_tls_verification_applies_to_batched_reads() -> None:
    """An unknown CA fails each path with BackendTLSError; with VAULT_CACERT the batch is read."""
    server = start_openbao(tls=True, kv_v1_mount="kv")
    try:
        server.api("PUT", "kv/one", {"k": "1"})
        server.api("PUT", "kv/two", {"k": "2"})
        results = backend_for(server).fetch_many(["kv/one", "kv/two"])
        assert all(isinstance(error, BackendTLSError) for error in results.values())
        verified = backend_for(server, VAULT_CACERT=str(server.ca_cert))
        assert verified.fetch_many(["kv/one", "kv/two"]) == {
            "kv/one": {"k": "1"},
            "kv/two": {"k": "2"},
        }
    finally:
        stop_openbao(server)


def test_no_batch_error_or_log_contains_a_token_or_value(
    vault_env: OpenBaoServer,
    canary: str,
    root_logger_capture: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Batched reads and their errors leave no token or value in messages, reprs or logs."""
    name = unique()
    vault_env.api("PUT", f"secret/data/{name}", {"data": {"password": canary}})
    client = vault_env.client()
    weak = client.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    paths = [f"secret/data/{name}", f"secret/data/{unique()}", f"kv/{unique()}"]
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        good = backend_for(vault_env)
        assert good.fetch_many(paths)[paths[0]] == {"password": canary}
        for token in (weak, canary):
            backend = backend_for(vault_env, VAULT_TOKEN=token)
            for result in backend.fetch_many(paths).values():
                assert isinstance(result, ConfigurationError)
                chain: BaseException | None = result
                while chain is not None:
                    seen += [str(chain), repr(chain)]
                    chain = chain.__cause__
            seen.append(repr(backend))
        manager = SecretManager(backend_for(vault_env))
        got = manager.get_many([f"{paths[0]}#password", f"{paths[1]}#password"])
        assert got[f"{paths[0]}#password"] == canary
        missing = got[f"{paths[1]}#password"]
        assert isinstance(missing, SecretNotFoundError)
        seen += [str(missing), repr(missing), repr(manager)]
    seen += [r.getMessage() for r in caplog.records] + root_logger_capture
    text = "\n".join(seen)
    assert canary not in text
    assert weak not in text


def test_silent_server_times_out_within_bounds() -> None:
    """A server that never answers gives each path a timed-out error, bounded by VAULT_TIMEOUT."""
    import socket
    import time

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # connections are queued, never answered
        addr = f"http://127.0.0.1:{listener.getsockname()[1]}"
        settings = VaultSettings.from_environ(
            {
                "VAULT_ADDR": addr,
                "VAULT_TOKEN": "t",
                "VAULT_TIMEOUT": "0.3",
                "VAULT_MAX_RETRIES": "0",
            }
        )
        start = time.monotonic()
        results = VaultBackend(settings=settings, sleep=no_sleep).fetch_many(["kv/a", "kv/b"])
        elapsed = time.monotonic() - start
    for error in results.values():
        assert isinstance(error, BackendUnavailableError) and "timed out" in str(error)
    assert elapsed < 3.0  # one shared deadline for the batch, then one ordinary try per path
