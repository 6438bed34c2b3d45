"""A node-local Vault Agent or OpenBao Proxy (``VAULT_AGENT_ADDR``) in front of the server.

As in the ``vault`` command (its API client reads ``VAULT_AGENT_ADDR`` after ``VAULT_ADDR`` and
lets it win), ``VAULT_AGENT_ADDR`` replaces ``VAULT_ADDR`` as the one address every request goes
to: reads, and also rotation's writes and token look-ups, since an OpenBao Proxy (and Vault
Agent's API proxy) forwards every request to the server. ``VAULT_ADDR`` is then not contacted
at all: falling back to it when the proxy is down would send a whole node's pods to the server at
once, the stampede the proxy is there to prevent, and without a token of their own.

With no ``VAULT_TOKEN``, AppRole or Kubernetes auth configured, requests carry no token and the
proxy attaches its own auto-auth token (``api_proxy { use_auto_auth_token = true }``); login,
renewal and re-login are then the proxy's job. A token configured here is still sent, and the
proxy forwards it unchanged.
"""

from __future__ import annotations

from typing import Final

from ..errors import ConfigurationError
from .vault_auth import Login, Send

__all__ = ["AGENT_VARIABLE", "ProxyTokenAuth", "check_agent_addr"]

AGENT_VARIABLE: Final = "VAULT_AGENT_ADDR"


class ProxyTokenAuth:
    """No token of our own: the proxy at ``VAULT_AGENT_ADDR`` adds its auto-auth token.

    Nothing to log in with, renew or look up; a refusal means the proxy does not attach its
    token (``use_auto_auth_token``) or its token lacks a policy.
    """

    can_login = False
    description = (
        "the auto-auth token of the proxy at VAULT_AGENT_ADDR (none sent by this client; the "
        "proxy's api_proxy block needs use_auto_auth_token = true)"
    )

    def __repr__(self) -> str:
        return "ProxyTokenAuth()"

    def login(self, send: Send) -> Login:
        """Return the empty token: requests go out without ``X-Vault-Token``, never expiring."""
        return Login(token="", ttl_seconds=0.0, renewable=False)


def check_agent_addr(text: str) -> str:
    """The one address ``VAULT_AGENT_ADDR`` names, without a trailing slash.

    Raises:
        ConfigurationError: several addresses (an agent is one local listener).
    """
    addr = text.strip().rstrip("/")
    if "," in addr:
        raise ConfigurationError(
            f"{AGENT_VARIABLE} names one local Vault Agent or OpenBao Proxy listener (e.g. "
            "http://127.0.0.1:8100), not a list; list several servers in VAULT_ADDR instead"
        )
    return addr
