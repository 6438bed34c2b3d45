"""VAULT_AGENT_ADDR: a node-local OpenBao Proxy in front of the server, as the vault CLI reads it.

The proxy tests run a real ``bao proxy`` (tests/servers/bao_proxy.py) with AppRole auto-auth in
front of the session's OpenBao, and count what reaches the server in its audit log.
"""

from __future__ import annotations

import pytest

from yosai_secrets import ConfigurationError
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
