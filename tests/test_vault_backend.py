"""The Vault/OpenBao backend against a real ``bao server -dev``: paths, fields, errors, settings."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers.openbao import (
    OpenBaoServer,
    free_port,
    port_is_free,
    start_openbao,
    stop_openbao,
)
from yosai_secrets import get_secret
from yosai_secrets.backends import create_backend
from yosai_secrets.backends.base import Backend, Describable, Location
from yosai_secrets.backends.vault import VaultBackend
from yosai_secrets.backends.vault_settings import DEV_ADDR, VaultSettings
from yosai_secrets.errors import (
    BackendAuthError,
    BackendPermissionError,
    BackendTLSError,
    BackendUnavailableError,
    ConfigurationError,
    InvalidReferenceError,
    MissingDependencyError,
    SecretNotFoundError,
)
from yosai_secrets.manager import SecretManager, default_manager
from yosai_secrets.testing import FakeClock

pytestmark = pytest.mark.integration


def unique() -> str:
    """A path segment no other test uses."""
    return "t" + uuid.uuid4().hex[:12]


def put_v2(server: OpenBaoServer, name: str, **fields: str) -> None:
    """Write fields to KV v2 at secret/<name>."""
    server.client().secrets.kv.v2.create_or_update_secret(path=name, secret=fields)


def put_v1(server: OpenBaoServer, name: str, **fields: str) -> None:
    """Write fields to KV v1 at kv/<name>."""
    server.client().secrets.kv.v1.create_or_update_secret(
        path=name, secret=fields, mount_point="kv"
    )


def no_sleep(_seconds: float) -> None:
    """Retry waits that cost no time."""


@pytest.fixture
def private_server() -> Iterator[OpenBaoServer]:
    """A dev server of this test's own, free to be sealed or stopped."""
    server = start_openbao(kv_v1_mount=None)
    try:
        yield server
    finally:
        stop_openbao(server)


def backend_for(server: OpenBaoServer, **overrides: Any) -> VaultBackend:
    """A backend built from the environment a user would set for ``server``."""
    environ = {"VAULT_ADDR": server.addr, "VAULT_TOKEN": server.token, **overrides}
    return VaultBackend(settings=VaultSettings.from_environ(environ), sleep=no_sleep)


# -- reading ----------------------------------------------------------------------------------


def test_done_when_get_secret_reads_a_kv2_field(vault_env: OpenBaoServer) -> None:
    """get_secret("secret/data/<name>#password") returns the value stored in the server."""
    name = unique()
    put_v2(vault_env, name, password="pw-" + name)
    assert get_secret(f"secret/data/{name}#password") == "pw-" + name


def test_backend_satisfies_the_protocol_and_is_built_by_the_registry(
    vault_env: OpenBaoServer,
) -> None:
    """The registry builds VaultBackend for "vault"; it is a Backend and Describable."""
    import os

    backend = create_backend("vault", os.environ)
    assert isinstance(backend, VaultBackend)
    assert isinstance(backend, Backend)
    assert isinstance(backend, Describable)
    assert backend.name == "vault"
    assert backend.describe("secret/data/db") == f"vault {vault_env.addr} secret/data/db"


def test_kv1_path_reads_a_field(vault_env: OpenBaoServer) -> None:
    """kv/<name>#password reads KV v1 (mount kv/)."""
    name = unique()
    put_v1(vault_env, name, password="v1-" + name)
    assert get_secret(f"kv/{name}#password") == "v1-" + name


def test_logical_kv2_path_shares_the_raw_path_cache_entry(vault_env: OpenBaoServer) -> None:
    """secret/<name> and secret/data/<name> locate to one raw path: one read serves both."""
    name = unique()
    put_v2(vault_env, name, password="p", user="u")
    manager = SecretManager()
    assert manager.backend.locate(f"secret/{name}#user") == Location(f"secret/data/{name}", "user")
    assert manager.get(f"secret/data/{name}#password") == "p"
    assert manager.get(f"secret/{name}#user") == "u"
    assert manager.stats().backend_calls == 1


def test_mount_version_is_asked_once_per_mount(vault_env: OpenBaoServer) -> None:
    """After the first lookup of secret/, other logical paths there need no mount lookup."""
    backend = backend_for(vault_env)
    backend.locate(f"secret/{unique()}#x")
    calls: list[str] = []
    original = backend.transport.send

    def counting(method: str, path: str, body: Any, token: Any) -> dict[str, Any]:
        calls.append(path)
        return original(method, path, body, token)

    backend.transport.send = counting  # type: ignore[method-assign]
    name = unique()
    assert backend.locate(f"secret/{name}#x").path == f"secret/data/{name}"
    assert backend.locate(f"kv/{name}#x").path == f"kv/{name}"
    assert [c for c in calls if c.startswith("sys/internal/ui/mounts")] == [
        f"sys/internal/ui/mounts/kv/{name}"
    ]


def counting_sends(backend: VaultBackend) -> list[str]:
    """Record the API path of every request ``backend`` sends from now on."""
    calls: list[str] = []
    original = backend.transport.send

    def counting(method: str, path: str, body: Any, token: Any) -> dict[str, Any]:
        calls.append(path)
        return original(method, path, body, token)

    backend.transport.send = counting  # type: ignore[method-assign]
    return calls


def test_raw_paths_are_read_first_with_no_lookup_before(vault_env: OpenBaoServer) -> None:
    """A fresh backend's first request is the read itself; the token's TTL is asked after."""
    v2, v1 = unique(), unique()
    put_v2(vault_env, v2, password="p2")
    put_v1(vault_env, v1, password="p1")
    backend = backend_for(vault_env)
    calls = counting_sends(backend)
    assert backend.locate(f"secret/data/{v2}#password").path == f"secret/data/{v2}"
    assert calls == []
    assert backend.fetch(f"secret/data/{v2}") == {"password": "p2"}
    assert calls == [f"secret/data/{v2}", "auth/token/lookup-self"]
    assert backend.fetch(f"secret/data/{v2}") == {"password": "p2"}
    assert calls[2:] == [f"secret/data/{v2}"]
    assert not backend.keeper.ttl_unknown


def test_background_backend_reads_without_waiting_for_the_token_lookup(
    vault_env: OpenBaoServer,
) -> None:
    """From the environment (background renewer), no request but the reads is made inline."""
    name = unique()
    put_v2(vault_env, name, a="1")
    backend = VaultBackend(
        settings=VaultSettings.from_environ(
            {"VAULT_ADDR": vault_env.addr, "VAULT_TOKEN": vault_env.token}
        ),
        renew_in_background=True,
    )
    try:
        calls = counting_sends(backend)
        assert backend.fetch(f"secret/data/{name}") == {"a": "1"}
        assert calls[0] == f"secret/data/{name}"
        thread = backend.keeper._thread
        assert thread is not None
        thread.join(5)  # a root token never expires: the renewer looks it up, then stops
        assert "auth/token/lookup-self" in calls and not backend.keeper.ttl_unknown
        assert backend.keeper.seconds_until_due() is None
    finally:
        backend.close()


def test_kv1_mount_with_a_data_folder_reads_as_written(vault_env: OpenBaoServer) -> None:
    """kv/data/<name> on a KV v1 mount is read as written and returns its fields as stored."""
    name = unique()
    vault_env.client().secrets.kv.v1.create_or_update_secret(
        path=f"data/{name}", secret={"data": "x", "metadata": "y"}, mount_point="kv"
    )
    assert backend_for(vault_env).fetch(f"kv/data/{name}") == {"data": "x", "metadata": "y"}


def test_proxy_variables_are_honoured_and_no_proxy_bypasses(vault_env: OpenBaoServer) -> None:
    """HTTP_PROXY is used (a dead proxy makes Vault unavailable) unless NO_PROXY names the host."""
    name = unique()
    put_v2(vault_env, name, a="1")
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    proxied = backend_for(vault_env, VAULT_MAX_RETRIES="0", HTTP_PROXY=dead_proxy, NO_PROXY="")
    with pytest.raises(BackendUnavailableError):
        proxied.fetch(f"secret/data/{name}")
    for bypass in ("127.0.0.1", "localhost,127.0.0.1", "*", f"127.0.0.1:{vault_env.port}"):
        bypassed = backend_for(vault_env, http_proxy=dead_proxy, no_proxy=bypass)
        assert bypassed.fetch(f"secret/data/{name}") == {"a": "1"}, bypass


def test_concurrent_reads_of_one_backend_return_their_own_values(
    vault_env: OpenBaoServer,
) -> None:
    """16 threads reading 16 paths through one backend each get their own path's fields."""
    from concurrent.futures import ThreadPoolExecutor

    names = [unique() for _ in range(16)]
    for name in names:
        put_v2(vault_env, name, value=name)
    backend = backend_for(vault_env)

    def read_all(offset: int) -> list[bool]:
        order = names[offset:] + names[:offset]
        return [backend.fetch(f"secret/data/{n}")["value"] == n for n in order * 5]

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(read_all, range(16)))
    assert all(all(row) for row in outcomes)


def test_several_fields_of_one_path_cost_one_read(vault_env: OpenBaoServer) -> None:
    """Three fields of one KV v2 path are one backend call (the cache keys on the path)."""
    name = unique()
    put_v2(vault_env, name, a="1", b="2", c="3")
    manager = default_manager()
    got = [get_secret(f"secret/data/{name}#{f}") for f in "abc"]
    assert got == ["1", "2", "3"]
    assert manager.stats().backend_calls == 1


def test_get_many_reads_each_path_once(vault_env: OpenBaoServer) -> None:
    """get_many over fields of two paths reads both in one batch call."""
    one, two = unique(), unique()
    put_v2(vault_env, one, a="1", b="2")
    put_v1(vault_env, two, c="3")
    manager = SecretManager()
    keys = [f"secret/data/{one}#a", f"secret/{one}#b", f"kv/{two}#c"]
    assert manager.get_many(keys) == dict(zip(keys, ["1", "2", "3"], strict=True))
    assert manager.stats().backend_calls == 1  # one fetch_many of the two paths


def test_bare_name_reads_field_at_default_secrets_path(vault_env: OpenBaoServer) -> None:
    """DB_PASSWORD reads field DB_PASSWORD of secret/data/yosai by default."""
    marker = "bare-" + unique()
    # Merge into secret/yosai: other tests may keep their own fields there.
    client = vault_env.client()
    try:
        current = client.secrets.kv.v2.read_secret_version(
            path="yosai", raise_on_deleted_version=True
        )
        fields = dict(current["data"]["data"])
    except Exception:
        fields = {}
    put_v2(vault_env, "yosai", **fields, BARE_TEST=marker)
    backend = backend_for(vault_env)
    assert backend.locate("BARE_TEST") == Location("secret/data/yosai", "BARE_TEST")
    assert SecretManager(backend).get("BARE_TEST") == marker


def test_bare_name_uses_vault_secrets_path(
    vault_env: OpenBaoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VAULT_SECRETS_PATH (logical or raw) says where bare names are read."""
    name = unique()
    put_v2(vault_env, name, DB_PASSWORD="from-" + name)
    monkeypatch.setenv("VAULT_SECRETS_PATH", f"secret/{name}")
    assert get_secret("DB_PASSWORD") == "from-" + name
    assert default_manager().describe("DB_PASSWORD").endswith(f"secret/data/{name}#DB_PASSWORD")


def test_bare_name_with_field_is_rejected(vault_env: OpenBaoServer) -> None:
    """A bare name with #field is ambiguous and refused with a message saying what to write."""
    with pytest.raises(InvalidReferenceError, match="VAULT_SECRETS_PATH"):
        backend_for(vault_env).locate("DB_PASSWORD#x")


def test_vault_reference_works_with_another_default_backend(vault_env: OpenBaoServer) -> None:
    """vault:PATH#FIELD is read from Vault even when SECRET_BACKEND is env."""
    import os

    name = unique()
    put_v2(vault_env, name, token="ref-" + name)
    manager = SecretManager("env", environ=dict(os.environ, SECRET_BACKEND="env"))
    assert manager.get(f"vault:secret/data/{name}#token") == "ref-" + name


def test_injected_client_is_used(openbao: OpenBaoServer) -> None:
    """A ready-made hvac.Client can be handed to the backend; its token is used."""
    name = unique()
    put_v1(openbao, name, k="injected")
    backend = VaultBackend(openbao.client())
    assert SecretManager(backend).get(f"kv/{name}#k") == "injected"


def test_namespace_is_sent(openbao: OpenBaoServer) -> None:
    """VAULT_NAMESPACE reads from that namespace's mounts."""
    namespace = unique()
    assert openbao.api("POST", f"sys/namespaces/{namespace}", {})[0] == 200
    client = openbao.client(namespace=namespace)
    client.sys.enable_secrets_engine("kv", path="kv", options={"version": "1"})
    client.secrets.kv.v1.create_or_update_secret(path="app", secret={"k": "ns"}, mount_point="kv")
    backend = backend_for(openbao, VAULT_NAMESPACE=namespace)
    assert SecretManager(backend).get("kv/app#k") == "ns"
    with pytest.raises(SecretNotFoundError):
        SecretManager(backend_for(openbao)).get(f"kv/{unique()}#k")


# -- errors -----------------------------------------------------------------------------------


def test_missing_path_is_secret_not_found_naming_address_and_path(
    vault_env: OpenBaoServer,
) -> None:
    """A path with nothing stored raises SecretNotFoundError whose places name addr and path."""
    name = unique()
    with pytest.raises(SecretNotFoundError) as info:
        get_secret(f"secret/data/{name}#password")
    assert info.value.places == (f"vault {vault_env.addr} secret/data/{name} (field 'password')",)
    assert info.value.key == f"secret/data/{name}#password"
    assert "kv put" in str(info.value)
    with pytest.raises(SecretNotFoundError):
        get_secret(f"kv/{name}#password")


def test_missing_field_names_field_and_fields_present(vault_env: OpenBaoServer) -> None:
    """A missing field raises SecretNotFoundError naming the path, the field and what exists."""
    name = unique()
    put_v2(vault_env, name, user="u")
    with pytest.raises(SecretNotFoundError) as info:
        get_secret(f"secret/data/{name}#password")
    message = str(info.value)
    assert f"secret/data/{name}" in message and "'password'" in message and "user" in message


def test_deleted_current_version_is_not_found(vault_env: OpenBaoServer) -> None:
    """A KV v2 secret whose current version is deleted reads as not found, with a hint."""
    name = unique()
    put_v2(vault_env, name, password="gone")
    vault_env.client().secrets.kv.v2.delete_latest_version_of_secret(path=name)
    with pytest.raises(SecretNotFoundError):
        get_secret(f"secret/data/{name}#password")


def test_permission_denied_names_path_and_address(vault_env: OpenBaoServer) -> None:
    """A valid token without a policy for the path raises BackendPermissionError."""
    name = unique()
    put_v2(vault_env, name, password="p")
    token = vault_env.client().auth.token.create(policies=["default"], ttl="1h")["auth"][
        "client_token"
    ]
    backend = backend_for(vault_env, VAULT_TOKEN=token)
    with pytest.raises(BackendPermissionError) as info:
        SecretManager(backend).get(f"secret/data/{name}#password")
    message = str(info.value)
    assert f"secret/data/{name}" in message and vault_env.addr in message
    assert token not in message
    assert info.value.backend == "vault" and info.value.path == f"secret/data/{name}"


def test_bad_token_is_an_auth_error(vault_env: OpenBaoServer) -> None:
    """An invalid token raises BackendAuthError that does not contain the token."""
    bogus = "s." + uuid.uuid4().hex
    with pytest.raises(BackendAuthError) as info:
        SecretManager(backend_for(vault_env, VAULT_TOKEN=bogus)).get(f"kv/{unique()}#x")
    assert bogus not in str(info.value) and "invalid, expired or revoked" in str(info.value)


def test_sealed_server_is_unavailable(private_server: OpenBaoServer) -> None:
    """A sealed server answers 503; after the retries that is BackendUnavailableError."""
    backend = backend_for(private_server)
    assert private_server.api("PUT", "sys/seal")[0] == 204
    with pytest.raises(BackendUnavailableError) as info:
        backend.fetch("secret/data/app")
    message = str(info.value)
    assert private_server.addr in message and "503" in message and "sealed" in message


def test_unreachable_address_is_unavailable_after_bounded_retries() -> None:
    """Nothing listening: BackendUnavailableError naming the address, after 1+max_retries rounds."""
    addr = f"http://127.0.0.1:{free_port()}"
    waits: list[float] = []
    settings = VaultSettings.from_environ(
        {"VAULT_ADDR": addr, "VAULT_TOKEN": "t", "VAULT_MAX_RETRIES": "3"}
    )
    backend = VaultBackend(settings=settings, sleep=waits.append)
    with pytest.raises(BackendUnavailableError) as info:
        backend.fetch("kv/x")
    assert addr in str(info.value) and "connection failed" in str(info.value)
    assert len(waits) == 3
    assert all(0 <= w <= 0.1 * 2**i for i, w in enumerate(waits))  # full jitter of the backoff


def test_next_address_is_tried_and_remembered(vault_env: OpenBaoServer) -> None:
    """With VAULT_ADDR=dead,live the read succeeds at once and later reads go to the live one."""
    name = unique()
    put_v1(vault_env, name, k="v")
    dead = f"http://127.0.0.1:{free_port()}"
    waits: list[float] = []
    settings = VaultSettings.from_environ(
        {"VAULT_ADDR": f"{dead}, {vault_env.addr}", "VAULT_TOKEN": vault_env.token}
    )
    backend = VaultBackend(settings=settings, sleep=waits.append)
    assert backend.fetch(f"kv/{name}") == {"k": "v"}
    assert backend.transport.addr == vault_env.addr
    assert backend.transport.failovers == 1
    assert waits == []


def test_rate_limited_read_is_retried_after_retry_after(private_server: OpenBaoServer) -> None:
    """A 429 from a rate-limit quota is retried, waiting at least the server's Retry-After."""
    server = private_server
    server.api("POST", "sys/quotas/config", {"enable_rate_limit_response_headers": True})
    server.api("PUT", "secret/data/app", {"data": {"k": "v"}})
    server.api("POST", "sys/quotas/rate-limit/rl", {"path": "secret/", "rate": 1, "interval": "1s"})
    import time

    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    settings = VaultSettings.from_environ({"VAULT_ADDR": server.addr, "VAULT_TOKEN": server.token})
    backend = VaultBackend(settings=settings, sleep=sleep)
    results = [backend.fetch("secret/data/app") for _ in range(3)]
    assert results == [{"k": "v"}] * 3
    assert waits and min(waits) >= 0.5


def test_tls_unverified_certificate_is_a_tls_error() -> None:
    """An HTTPS server with an unknown CA raises BackendTLSError; VAULT_CACERT fixes it."""
    server = start_openbao(tls=True, kv_v1_mount="kv")
    try:
        server.api("PUT", "kv/app", {"k": "tls"})
        with pytest.raises(BackendTLSError) as info:
            backend_for(server).fetch("kv/app")
        assert server.addr in str(info.value) and "VAULT_CACERT" in str(info.value)
        verified = backend_for(server, VAULT_CACERT=str(server.ca_cert))
        assert verified.fetch("kv/app") == {"k": "tls"}
        assert verified.settings.ca_cert == str(server.ca_cert)
    finally:
        stop_openbao(server)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_skip_verify_turns_verification_off() -> None:
    """VAULT_SKIP_VERIFY=true reads from a server whose CA is unknown."""
    server = start_openbao(tls=True, kv_v1_mount="kv")
    try:
        server.api("PUT", "kv/app", {"k": "insecure"})
        assert backend_for(server, VAULT_SKIP_VERIFY="true").fetch("kv/app") == {"k": "insecure"}
    finally:
        stop_openbao(server)


def test_stale_value_is_served_while_vault_is_down(private_server: OpenBaoServer) -> None:
    """A warm manager keeps serving the last value (stale-if-error) when the server stops."""
    private_server.api("PUT", "secret/data/app", {"data": {"k": "warm"}})
    clock = FakeClock()
    manager = SecretManager(backend_for(private_server), ttl_seconds=10, clock=clock)
    assert manager.get("secret/data/app#k") == "warm"
    stop_openbao(private_server)
    clock.advance(11)
    assert manager.get("secret/data/app#k") == "warm"
    assert manager.is_stale("secret/data/app#k")


# -- settings ---------------------------------------------------------------------------------


def test_settings_read_the_vault_variables(tmp_path: Any) -> None:
    """VAULT_ADDR (a list), NAMESPACE, CACERT, TIMEOUT, MAX_RETRIES, SECRETS_PATH are read."""
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    settings = VaultSettings.from_environ(
        {
            "VAULT_ADDR": "https://a:8200/, https://b:8200",
            "VAULT_TOKEN": "tok-SECRET-123",
            "VAULT_NAMESPACE": "team",
            "VAULT_CACERT": str(ca),
            "VAULT_TIMEOUT": "2.5s",
            "VAULT_MAX_RETRIES": "4",
            "VAULT_SECRETS_PATH": "/secret/app/",
        }
    )
    assert settings.addresses == ("https://a:8200", "https://b:8200")
    assert (settings.namespace, settings.ca_cert) == ("team", str(ca))
    assert (settings.timeout_seconds, settings.max_retries) == (2.5, 4)
    assert settings.secrets_path == "secret/app"
    assert "tok-SECRET-123" not in repr(settings) + repr(settings.auth)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"VAULT_ADDR": "vault:8200"}, "VAULT_ADDR"),
        ({"VAULT_SKIP_VERIFY": "maybe"}, "VAULT_SKIP_VERIFY"),
        ({"VAULT_CACERT": "/nonexistent/ca.pem"}, "VAULT_CACERT"),
        ({"VAULT_TIMEOUT": "soon"}, "VAULT_TIMEOUT"),
        ({"VAULT_MAX_RETRIES": "-1"}, "VAULT_MAX_RETRIES"),
        ({"VAULT_ROLE_ID": "r"}, "VAULT_SECRET_ID"),
    ],
)
def test_malformed_settings_name_the_variable(extra: dict[str, str], needle: str) -> None:
    """Each malformed variable raises ConfigurationError naming it."""
    environ = {"VAULT_ADDR": "http://127.0.0.1:8200", "VAULT_TOKEN": "t", **extra}
    with pytest.raises(ConfigurationError, match=needle):
        VaultSettings.from_environ(environ)


def test_tls_verification_is_on_by_default() -> None:
    """Without VAULT_SKIP_VERIFY or VAULT_CACERT, certificates are verified."""
    settings = VaultSettings.from_environ({"VAULT_ADDR": "https://v:8200", "VAULT_TOKEN": "t"})
    assert not settings.skip_verify and settings.ca_cert is None
    endpoint = VaultBackend(settings=settings).transport.endpoints[0]
    assert "CERT_REQUIRED" in repr(vars(endpoint))


@pytest.mark.parametrize("env", [None, "production", "staging", "test"])
def test_missing_addr_and_token_fail_closed_outside_development(env: str | None) -> None:
    """Without VAULT_ADDR/VAULT_TOKEN, every environment but development is an error saying how."""
    environ = {} if env is None else {"YOSAI_ENV": env}
    with pytest.raises(ConfigurationError) as info:
        create_backend("vault", environ)
    message = str(info.value)
    assert "VAULT_ADDR" in message and "VAULT_TOKEN" in message
    assert "k8s/" in message and "environment" in message


def test_missing_token_alone_is_named() -> None:
    """With VAULT_ADDR set, the error names only VAULT_TOKEN."""
    with pytest.raises(ConfigurationError) as info:
        VaultSettings.from_environ({"VAULT_ADDR": "http://v:8200"})
    assert "VAULT_TOKEN" in str(info.value) and "needs VAULT_ADDR" not in str(info.value)


def test_development_defaults_log_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """YOSAI_ENV=development and no VAULT_ADDR/TOKEN: 127.0.0.1:8200, token root, one log line."""
    with caplog.at_level(logging.INFO, logger="yosai_secrets"):
        backend = create_backend("vault", {"YOSAI_ENV": "development"})
    assert isinstance(backend, VaultBackend)
    assert backend.transport.addresses == [DEV_ADDR]
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("yosai_secrets")]
    assert len(lines) == 1 and DEV_ADDR in lines[0] and "development" in lines[0]


def test_development_defaults_read_from_a_dev_server_on_8200(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With bao server -dev on 127.0.0.1:8200 (token root), YOSAI_ENV=development just works."""
    if not port_is_free(8200):
        pytest.skip("127.0.0.1:8200 is in use; the development-defaults read needs it free")
    server = start_openbao(8200, token="root", kv_v1_mount=None)
    try:
        server.api("PUT", "secret/data/db", {"data": {"password": "dev-pw"}})
        monkeypatch.setenv("YOSAI_ENV", "development")
        monkeypatch.setenv("SECRET_BACKEND", "vault")
        assert get_secret("secret/data/db#password") == "dev-pw"
    finally:
        stop_openbao(server)


def test_missing_urllib3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without urllib3, building the backend raises MissingDependencyError naming the extra."""
    monkeypatch.setitem(sys.modules, "urllib3", None)
    with pytest.raises(MissingDependencyError) as info:
        create_backend("vault", {"VAULT_ADDR": "http://v:8200", "VAULT_TOKEN": "t"})
    assert "yosai-secrets[vault]" in str(info.value)


# -- no leaks ---------------------------------------------------------------------------------


def test_no_message_or_log_contains_a_token_or_value(
    vault_env: OpenBaoServer,
    canary: str,
    root_logger_capture: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Reads and every error kind leave no token or value in messages, reprs or logs."""
    name = unique()
    put_v2(vault_env, name, password=canary)
    client = vault_env.client()
    token = client.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        good = backend_for(vault_env)
        manager = SecretManager(good)
        assert manager.get(f"secret/data/{name}#password") == canary
        seen += [repr(good), repr(manager), repr(good.keeper), repr(good.settings)]
        seen.append(str(good.token_status()))
        failing = [
            (backend_for(vault_env, VAULT_TOKEN=token), f"secret/data/{name}#password"),
            (backend_for(vault_env, VAULT_TOKEN=canary), f"secret/data/{name}#password"),
            (good, f"secret/data/{name}#nope"),
            (good, f"secret/data/{unique()}#password"),
            (backend_for(vault_env, VAULT_ADDR=f"http://127.0.0.1:{free_port()}"), "kv/a#b"),
        ]
        for backend, key in failing:
            with pytest.raises(ConfigurationError) as info:
                SecretManager(backend).get(key)
            chain: BaseException | None = info.value
            while chain is not None:
                seen.append(str(chain))
                seen.append(repr(chain))
                chain = chain.__cause__
            seen.append(repr(backend))
    seen += [r.getMessage() for r in caplog.records] + root_logger_capture
    text = "\n".join(seen)
    assert canary not in text
    assert token not in text


@pytest.mark.parametrize(
    "addr",
    [
        "http://admin:pw-CANARY@vault.example.com:8200",
        "https://pw-CANARY@vault.example.com",
        "https://vault-a:8200,http://user:pw-CANARY@vault-b:8200/",
    ],
)
def test_credentials_in_vault_addr_are_refused_without_being_shown(addr: str) -> None:
    """user:password@ in VAULT_ADDR is a ConfigurationError that never echoes the credentials."""
    with pytest.raises(ConfigurationError, match="URL credentials") as info:
        VaultSettings.from_environ({"VAULT_ADDR": addr, "VAULT_TOKEN": "t"})
    assert "CANARY" not in str(info.value) and "admin" not in str(info.value)


@pytest.mark.parametrize(
    ("addr", "env", "warned"),
    [
        ("http://vault.example.com:8200", "production", True),
        ("http://10.1.2.3:8200", "staging", True),
        ("http://127.0.0.1:8200", "production", False),
        ("http://localhost:8200", "production", False),
        ("https://vault.example.com:8200", "production", False),
        ("http://vault.example.com:8200", "development", False),
    ],
)
def test_plain_http_to_another_host_is_warned_outside_development(
    addr: str, env: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A token sent over plain http:// to a non-loopback host is worth one warning."""
    with caplog.at_level(logging.WARNING, logger="yosai_secrets.backends.vault"):
        VaultSettings.from_environ({"VAULT_ADDR": addr, "VAULT_TOKEN": "t", "YOSAI_ENV": env})
    assert any("unencrypted" in r.getMessage() for r in caplog.records) is warned


@pytest.mark.parametrize(
    "key",
    [
        "secret/data/%2e%2e/%2e%2e/auth/token/lookup-self#id",
        "secret/data/%2E%2E/%2E%2E/%2E%2E/sys/mounts#x",
        "secret/data/../../sys/mounts#x",
        "secret/data/./x#y",
        "secret/data/%2e/x#y",
        "secret//data/x#y",
        "secret/data/a%2f..%2f..%2fsys#y",
        "secret/data/a%5c..#y",
        "secret/data/%20..%20/x#y",
    ],
)
def test_references_cannot_leave_their_mount(key: str) -> None:
    """Dot, empty and encoded-separator segments are refused before any request is sent."""
    backend = VaultBackend(
        settings=VaultSettings.from_environ(
            {"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "t"}
        )
    )
    with pytest.raises(InvalidReferenceError):
        backend.locate(key)
    with pytest.raises(InvalidReferenceError):
        SecretManager(backend).get(key)
