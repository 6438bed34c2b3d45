"""VAULT_AGENT_ADDR: a node-local OpenBao Proxy in front of the server, as the vault CLI reads it.

The proxy tests run a real ``bao proxy`` (tests/servers/bao_proxy.py) with AppRole auto-auth in
front of the session's OpenBao, and count what reaches the server in its audit log.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.servers.bao_proxy import BaoProxy
from tests.servers.openbao import OpenBaoServer
from tests.servers.process import free_port
from yosai_secrets import ConfigurationError, SecretManager
from yosai_secrets.backends.vault_agent import ProxyTokenAuth
from yosai_secrets.backends.vault_auth import StaticTokenAuth
from yosai_secrets.backends.vault_settings import VaultSettings

AGENT = "http://127.0.0.1:8100"


def test_agent_address_wins_over_vault_addr_and_needs_no_token() -> None:
    """VAULT_AGENT_ADDR replaces VAULT_ADDR; with no token configured, the proxy supplies one."""
    settings = VaultSettings.from_environ(
        {"VAULT_AGENT_ADDR": AGENT + "/", "VAULT_ADDR": "https://vault.example.com:8200"}
    )
    assert settings.addresses == (AGENT,)
    assert settings.via_agent
    assert isinstance(settings.auth, ProxyTokenAuth)
    assert "use_auto_auth_token" in settings.auth.description


def test_a_configured_token_is_still_sent_through_the_agent() -> None:
    """VAULT_TOKEN beside VAULT_AGENT_ADDR is used (the proxy forwards it as it is)."""
    settings = VaultSettings.from_environ({"VAULT_AGENT_ADDR": AGENT, "VAULT_TOKEN": "t-agent"})
    assert isinstance(settings.auth, StaticTokenAuth)


def test_agent_address_is_checked_like_vault_addr() -> None:
    """Credentials in the URL, a non-http scheme or a list are refused, naming VAULT_AGENT_ADDR."""
    with pytest.raises(ConfigurationError, match="VAULT_AGENT_ADDR") as caught:
        VaultSettings.from_environ({"VAULT_AGENT_ADDR": "http://user:agent-canary-pw@127.0.0.1:1"})
    assert "agent-canary-pw" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="VAULT_AGENT_ADDR entry 'unix:/x'"):
        VaultSettings.from_environ({"VAULT_AGENT_ADDR": "unix:/x"})
    with pytest.raises(ConfigurationError, match="VAULT_AGENT_ADDR names one"):
        VaultSettings.from_environ({"VAULT_AGENT_ADDR": f"{AGENT},{AGENT}"})


def test_without_agent_vault_addr_rules_are_unchanged() -> None:
    """No VAULT_AGENT_ADDR: VAULT_ADDR and a token are still required outside development."""
    with pytest.raises(ConfigurationError, match="VAULT_TOKEN"):
        VaultSettings.from_environ({"VAULT_ADDR": "https://vault.example.com:8200"})
    settings = VaultSettings.from_environ({"VAULT_ADDR": AGENT, "VAULT_TOKEN": "t"})
    assert not settings.via_agent


# -- through a real bao proxy ---------------------------------------------------------------------


def _write(openbao: OpenBaoServer, name: str, data: dict[str, str]) -> None:
    status, _ = openbao.api("POST", f"secret/data/{name}", {"data": data})
    assert status == 200


def _audited(openbao: OpenBaoServer, path: str) -> list[dict[str, Any]]:
    """The audit log's request entries for ``path`` (the server's own record of what reached it)."""
    assert openbao.audit_log is not None
    entries = []
    for line in openbao.audit_log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("type") == "request" and entry["request"].get("path") == path:
            entries.append(entry)
    return entries


def _agent_environ(bao_proxy: BaoProxy, name: str, **more: str) -> dict[str, str]:
    return {
        "SECRET_BACKEND": "vault",
        "VAULT_AGENT_ADDR": bao_proxy.addr,
        "VAULT_SECRETS_PATH": f"secret/data/{name}",
        **more,
    }


@pytest.mark.integration
def test_reads_through_the_proxy_need_no_vault_token(
    openbao: OpenBaoServer, bao_proxy: BaoProxy
) -> None:
    """With only VAULT_AGENT_ADDR, secrets are read with the proxy's AppRole token; none is sent."""
    name = "agent-" + uuid.uuid4().hex[:8]
    _write(openbao, name, {"DB_PASSWORD": "agent-read-canary-1", "SECRET_KEY": "agent-key-canary"})
    manager = SecretManager(environ=_agent_environ(bao_proxy, name))
    got = manager.get_many(["DB_PASSWORD", "SECRET_KEY"])
    assert got == {"DB_PASSWORD": "agent-read-canary-1", "SECRET_KEY": "agent-key-canary"}
    assert (
        manager.describe("DB_PASSWORD") == f"vault {bao_proxy.addr} secret/data/{name}#DB_PASSWORD"
    )
    status = manager.backend.token_status()  # type: ignore[attr-defined]
    assert status["via_agent"] and status["address"] == bao_proxy.addr
    assert status["logins"] == 1 and status["renewals"] == 0  # ours: no request; the proxy's job
    [read] = _audited(openbao, f"secret/data/{name}")[-1:]
    assert read["auth"]["metadata"]["role_name"] == bao_proxy.role  # the proxy's token
    assert "agent-read-canary-1" not in repr(manager) + str(status)
    manager.close()


@pytest.mark.integration
def test_agent_address_wins_over_a_dead_vault_addr(
    openbao: OpenBaoServer, bao_proxy: BaoProxy
) -> None:
    """VAULT_ADDR at a port nobody listens on is never tried: every read goes to the agent."""
    name = "agent-" + uuid.uuid4().hex[:8]
    _write(openbao, name, {"DB_PASSWORD": "agent-wins-canary"})
    environ = _agent_environ(bao_proxy, name, VAULT_ADDR=f"http://127.0.0.1:{free_port()}")
    manager = SecretManager(environ=environ, ttl_seconds=0)
    assert [manager.get("DB_PASSWORD") for _ in range(3)] == ["agent-wins-canary"] * 3
    backend = manager.backend
    assert backend.transport.failovers == 0 and backend.transport.retries == 0  # type: ignore[attr-defined]
    manager.close()


@pytest.mark.integration
def test_a_rotation_written_through_the_proxy_is_read_back(
    openbao: OpenBaoServer, bao_proxy: BaoProxy
) -> None:
    """The rotation store writes a new version through the proxy (same client); reads see it."""
    from yosai_secrets.rotation.stores import open_store

    name = "agent-rot-" + uuid.uuid4().hex[:8]
    old = {"SECRET_KEY": "agent-old-key-" + "o" * 40, "AUTH0_DOMAIN": "t.example"}
    _write(openbao, name, old)
    environ = _agent_environ(bao_proxy, name)
    manager = SecretManager(environ=environ)
    assert manager.get("SECRET_KEY") == old["SECRET_KEY"]
    store = open_store(environ, manager.backend)
    state: dict[str, Any] = {}
    new = {"SECRET_KEY": "agent-new-key-" + "n" * 40}
    store.prepare(state, {"SECRET_KEY": old["SECRET_KEY"]})
    store.stage(state, new)
    store.promote(state, new, "2026-11-29T10:00:00Z")
    manager.invalidate()
    assert manager.get("SECRET_KEY") == new["SECRET_KEY"]
    assert manager.get("AUTH0_DOMAIN") == "t.example"
    writes = [
        e
        for e in _audited(openbao, f"secret/data/{name}")
        if e["request"]["operation"] in ("create", "update")
    ]
    assert writes and all(e["auth"]["metadata"]["role_name"] == bao_proxy.role for e in writes[1:])
    assert store.rotated_at("SECRET_KEY") is not None
    manager.close()


@pytest.mark.integration
def test_the_proxy_forwards_every_kv_read_our_cache_is_what_saves_them(
    openbao: OpenBaoServer, bao_proxy: BaoProxy
) -> None:
    """OpenBao Proxy's cache holds tokens and leases, not KV: 10 uncached reads reach the server
    10 times, 10 reads through our cache once (the audit log counts them)."""
    name = "agent-count-" + uuid.uuid4().hex[:8]
    _write(openbao, name, {"DB_PASSWORD": "agent-count-canary"})
    path = f"secret/data/{name}"
    before = len(_audited(openbao, path))
    uncached = SecretManager(environ=_agent_environ(bao_proxy, name), ttl_seconds=0)
    for _ in range(10):
        assert uncached.get("DB_PASSWORD") == "agent-count-canary"
    after_uncached = len(_audited(openbao, path))
    cached = SecretManager(environ=_agent_environ(bao_proxy, name))
    for _ in range(10):
        assert cached.get("DB_PASSWORD") == "agent-count-canary"
    assert after_uncached - before == 10
    assert len(_audited(openbao, path)) - after_uncached == 1
    # What the proxy does save: no login, token look-up or renewal from this client at all.
    proxied = [e for e in _audited(openbao, path)[before:] if e["auth"].get("metadata")]
    assert {e["auth"]["metadata"]["role_name"] for e in proxied} == {bao_proxy.role}
    uncached.close()
    cached.close()
