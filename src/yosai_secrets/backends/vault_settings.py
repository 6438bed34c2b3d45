"""The ``VAULT_*`` variables, read and checked once, with one precise message per mistake.

``VAULT_ADDR``, ``VAULT_TOKEN``, ``VAULT_NAMESPACE``, ``VAULT_CACERT``, ``VAULT_CAPATH``,
``VAULT_CLIENT_CERT``, ``VAULT_CLIENT_KEY`` and ``VAULT_SKIP_VERIFY`` mean what they mean to the
``vault``/``bao`` command. ``VAULT_ADDR`` may list several addresses, comma-separated, tried in
turn. The proxy variables (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) are read
here once for each address, as ``curl`` and ``requests`` read them. With
``YOSAI_ENV=development`` set explicitly and no address or token, the development server
(``http://127.0.0.1:8200``, token ``root``) is used and one log line says so; any other
environment fails closed with a :class:`ConfigurationError`. ``VAULT_AGENT_ADDR`` (a node-local
Vault Agent or OpenBao Proxy) replaces ``VAULT_ADDR`` and makes a token optional: see
:mod:`.vault_agent`.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ..environments import current_environment
from ..envvars import env_bool, env_int, env_seconds
from ..errors import ConfigurationError
from ..netinfo import is_loopback
from ..references import check_name, shown
from .file import shown_path
from .vault_agent import AGENT_VARIABLE, ProxyTokenAuth, check_agent_addr
from .vault_auth import (
    DEFAULT_K8S_TOKEN_FILE,
    AppRoleAuth,
    AuthMethod,
    KubernetesAuth,
    StaticTokenAuth,
    fits_a_header,
)

__all__ = [
    "DEFAULT_SECRETS_PATH",
    "DEFAULT_TIMEOUT_SECONDS",
    "DEV_ADDR",
    "VaultSettings",
]

_log = logging.getLogger("yosai_secrets.backends.vault")

DEV_ADDR: Final = "http://127.0.0.1:8200"
# The well-known token of `vault server -dev -dev-root-token-id=root`, development only.
_DEV_TOKEN: Final = "root"  # noqa: S105
DEFAULT_SECRETS_PATH: Final = "secret/data/yosai"
DEFAULT_TIMEOUT_SECONDS: Final = 5.0
DEFAULT_MAX_RETRIES: Final = 2


@dataclass(frozen=True)
class VaultSettings:
    """Where Vault is, how to talk to it and how to log in.

    Attributes:
        addresses: API addresses, tried in this order (``VAULT_ADDR``).
        namespace: the Vault/OpenBao namespace (``VAULT_NAMESPACE``).
        ca_cert: a CA bundle to verify the server with (``VAULT_CACERT``).
        ca_path: a directory of CA certificates (``VAULT_CAPATH``).
        client_cert: a client certificate for mutual TLS (``VAULT_CLIENT_CERT``, PEM).
        client_key: its private key (``VAULT_CLIENT_KEY``, PEM).
        proxies: for each address, the proxy to reach it through (None: direct).
        skip_verify: do not verify the certificate (``VAULT_SKIP_VERIFY``; development only).
        timeout_seconds: the timeout of every request (``VAULT_TIMEOUT``).
        max_retries: extra rounds over the addresses on failure (``VAULT_MAX_RETRIES``).
        secrets_path: where bare names are read (``VAULT_SECRETS_PATH``).
        auth: how to obtain a token (None: the caller supplies one).
        via_agent: the address is a local agent's or proxy's (``VAULT_AGENT_ADDR``).
    """

    addresses: tuple[str, ...]
    namespace: str | None = None
    ca_cert: str | None = None
    ca_path: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    proxies: tuple[str | None, ...] = ()
    skip_verify: bool = False
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_retries: int = DEFAULT_MAX_RETRIES
    secrets_path: str = DEFAULT_SECRETS_PATH
    auth: AuthMethod | None = field(default=None, compare=False)
    via_agent: bool = False

    def __post_init__(self) -> None:
        if not self.addresses:
            raise ConfigurationError("Vault settings need at least one address (VAULT_ADDR)")
        for addr in self.addresses:
            _check_addr(addr)
        if self.timeout_seconds <= 0:
            raise ConfigurationError(
                f"VAULT_TIMEOUT must be > 0 seconds, got {self.timeout_seconds}"
            )
        if self.max_retries < 0:
            raise ConfigurationError(f"VAULT_MAX_RETRIES must be >= 0, got {self.max_retries}")
        # Bare names are read there: it must not climb out of its mount any more than a key.
        check_name("vault", self.secrets_path, f"VAULT_SECRETS_PATH={self.secrets_path}")
        if self.namespace and not fits_a_header(self.namespace):
            raise ConfigurationError(
                f"VAULT_NAMESPACE {shown(self.namespace)} holds a character an HTTP header "
                "cannot carry (a line break, a non-ASCII letter); set it to the namespace's path"
            )
        if bool(self.client_cert) != bool(self.client_key):
            raise ConfigurationError(
                "mutual TLS needs both VAULT_CLIENT_CERT and VAULT_CLIENT_KEY; only "
                f"{'VAULT_CLIENT_CERT' if self.client_cert else 'VAULT_CLIENT_KEY'} is set"
            )
        if self.proxies and len(self.proxies) != len(self.addresses):
            raise ConfigurationError("Vault settings need one proxy entry (or None) per address")

    def proxy_for(self, index: int) -> str | None:
        """The proxy for the address at ``index`` (None: connect directly)."""
        return self.proxies[index] if self.proxies else None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> VaultSettings:
        """Read the ``VAULT_*`` variables.

        Raises:
            ConfigurationError: something is missing or malformed (the message names the variable).
        """

        def get(name: str) -> str:
            return environ.get(name, "").strip()

        addr_text, auth = _address_and_auth(environ)
        addresses = tuple(a.strip().rstrip("/") for a in addr_text.split(",") if a.strip())
        variable = AGENT_VARIABLE if get(AGENT_VARIABLE) else "VAULT_ADDR"
        for addr in addresses:
            _check_addr(addr, variable)  # before anything can show an address with credentials
        _warn_plain_http(addresses, environ, variable)
        return cls(
            addresses=addresses,
            namespace=get("VAULT_NAMESPACE") or None,
            ca_cert=_pem_file(
                environ,
                "VAULT_CACERT",
                "the PEM bundle of the CA that signed the Vault server's certificate",
            ),
            ca_path=_directory(environ, "VAULT_CAPATH"),
            client_cert=_pem_file(environ, "VAULT_CLIENT_CERT", "the client certificate (PEM)"),
            client_key=_pem_file(environ, "VAULT_CLIENT_KEY", "the client certificate's key (PEM)"),
            proxies=tuple(_proxy_for(addr, environ) for addr in addresses),
            skip_verify=env_bool(environ, "VAULT_SKIP_VERIFY"),
            timeout_seconds=env_seconds(
                environ,
                "VAULT_TIMEOUT" if get("VAULT_TIMEOUT") else "VAULT_CLIENT_TIMEOUT",
                DEFAULT_TIMEOUT_SECONDS,
                exclusive=True,
            ),
            max_retries=env_int(environ, "VAULT_MAX_RETRIES", DEFAULT_MAX_RETRIES),
            secrets_path=get("VAULT_SECRETS_PATH").strip("/") or DEFAULT_SECRETS_PATH,
            auth=auth,
            via_agent=variable == AGENT_VARIABLE,
        )


def _address_and_auth(environ: Mapping[str, str]) -> tuple[str, AuthMethod]:
    """``VAULT_ADDR`` and the auth method; the development defaults, or an error naming both."""
    agent = environ.get(AGENT_VARIABLE, "").strip()
    if agent:
        # It wins over VAULT_ADDR, as in the vault command; the proxy may add the token.
        return check_agent_addr(agent), _auth_from_environ(environ) or ProxyTokenAuth()
    env = current_environment(environ)
    development = env == "development"
    addr_text = environ.get("VAULT_ADDR", "").strip()
    auth = _auth_from_environ(environ)
    missing = [
        name
        for name, unset in (("VAULT_ADDR", not addr_text), ("VAULT_TOKEN", auth is None))
        if unset
    ]
    if missing and not development:
        raise _missing_error(missing, env)
    if missing:
        _log.warning(
            "YOSAI_ENV=development and %s not set: using the development Vault server at %s "
            "with the dev root token (`bao server -dev -dev-root-token-id=root`)",
            " and ".join(missing),
            addr_text or DEV_ADDR,
        )
    if auth is None:
        auth = StaticTokenAuth(_DEV_TOKEN, source="the development default token")
    return addr_text or DEV_ADDR, auth


def _missing_error(missing: list[str], env: str) -> ConfigurationError:
    """One message naming what is missing, where to set it, and the development alternative."""
    how = []
    if "VAULT_ADDR" in missing:
        how.append("VAULT_ADDR (e.g. https://vault.example.com:8200) in the ConfigMap")
    if "VAULT_TOKEN" in missing:
        how.append(
            "VAULT_TOKEN in the Secret (or AppRole: VAULT_ROLE_ID with VAULT_SECRET_ID or "
            "VAULT_SECRET_ID_FILE; or Kubernetes auth: VAULT_K8S_ROLE)"
        )
    one = len(missing) == 1
    return ConfigurationError(
        f"the Vault backend needs {' and '.join(missing)}, which {'is' if one else 'are'} "
        f"not set (YOSAI_ENV={env}). Set {'it' if one else 'them'} in the environment, or in "
        f"Kubernetes: {'; '.join(how)} under k8s/. For local development against "
        f"`vault server -dev`, set YOSAI_ENV=development to use {DEV_ADDR}."
    )


def _auth_from_environ(environ: Mapping[str, str]) -> AuthMethod | None:
    """AppRole if VAULT_ROLE_ID is set, else Kubernetes if VAULT_K8S_ROLE, else VAULT_TOKEN."""

    def get(name: str) -> str:
        return environ.get(name, "").strip()

    if get("VAULT_ROLE_ID"):
        return AppRoleAuth(
            get("VAULT_ROLE_ID"),
            secret_id=get("VAULT_SECRET_ID") or None,
            secret_id_file=get("VAULT_SECRET_ID_FILE") or None,
            mount=get("VAULT_APPROLE_MOUNT") or "approle",
        )
    if get("VAULT_K8S_ROLE"):
        return KubernetesAuth(
            get("VAULT_K8S_ROLE"),
            token_file=get("VAULT_K8S_TOKEN_FILE") or DEFAULT_K8S_TOKEN_FILE,
            mount=get("VAULT_K8S_MOUNT") or "kubernetes",
        )
    if get("VAULT_TOKEN"):
        return StaticTokenAuth(get("VAULT_TOKEN"))
    return None


def _check_addr(addr: str, variable: str = "VAULT_ADDR") -> None:
    scheme, sep, rest = addr.partition("://")
    if "@" in (rest if sep else addr).partition("/")[0]:  # with a scheme or without one
        # Never echoed: the part before "@" is a user name and perhaps a password.
        raise ConfigurationError(
            f"a {variable} entry holds a user name or password (user:password@host); Vault "
            f"authenticates with a token, never with URL credentials: remove them from {variable}"
        )
    if not sep or scheme not in ("http", "https") or not rest.strip("/"):
        raise ConfigurationError(
            f"{variable} entry {addr!r} is not an http:// or https:// address "
            "(e.g. https://vault.example.com:8200; several are separated by commas)"
        )


def _warn_plain_http(
    addresses: tuple[str, ...], environ: Mapping[str, str], variable: str = "VAULT_ADDR"
) -> None:
    """Outside development, say once that a token would cross the network unencrypted."""
    if current_environment(environ) == "development":
        return
    for addr in addresses:
        parsed = urllib.parse.urlsplit(addr)
        host = (parsed.hostname or "").lower()
        if parsed.scheme == "http" and not is_loopback(host):
            _log.warning(
                "%s %s is plain http:// to a host other than this machine: the Vault "
                "token crosses the network unencrypted; use https:// (YOSAI_ENV=%s)",
                variable,
                addr,
                current_environment(environ),
            )


def _pem_file(environ: Mapping[str, str], name: str, what: str) -> str | None:
    # Not repeated unless it is a path: VAULT_CLIENT_KEY may hold the private key by mistake.
    path = environ.get(name, "").strip()
    if path and not (path.isprintable() and Path(path).is_file()):
        raise ConfigurationError(
            f"{name}={shown_path(path)} is not a readable file; point it at {what}"
        )
    return path or None


def _directory(environ: Mapping[str, str], name: str) -> str | None:
    path = environ.get(name, "").strip()
    if path and not (path.isprintable() and Path(path).is_dir()):
        raise ConfigurationError(
            f"{name}={shown_path(path)} is not a directory; point it at a directory of CA "
            "certificates (PEM, hashed names as made by `openssl rehash`)"
        )
    return path or None


def _proxy_for(addr: str, environ: Mapping[str, str]) -> str | None:
    """The proxy ``curl`` would use for ``addr``: ``<SCHEME>_PROXY`` or ``ALL_PROXY``, unless
    ``NO_PROXY`` names its host."""

    def get(name: str) -> str:
        return (environ.get(name) or environ.get(name.lower()) or "").strip()

    parsed = urllib.parse.urlsplit(addr)
    proxy = get(f"{parsed.scheme.upper()}_PROXY") or get("ALL_PROXY")
    if not proxy or _bypassed(parsed.hostname or "", parsed.port, get("NO_PROXY")):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    return proxy


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    host = host.lower()
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False
