"""The ``VAULT_*`` variables, read and checked once, with one precise message per mistake.

``VAULT_ADDR``, ``VAULT_TOKEN``, ``VAULT_NAMESPACE``, ``VAULT_CACERT`` and ``VAULT_SKIP_VERIFY``
mean what they mean to the ``vault``/``bao`` command. ``VAULT_ADDR`` may list several addresses,
comma-separated, tried in turn. With ``YOSAI_ENV=development`` set explicitly and no address or
token, the development server (``http://127.0.0.1:8200``, token ``root``) is used and one log line
says so; any other environment fails closed with a :class:`ConfigurationError`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ..environments import current_environment
from ..errors import ConfigurationError
from .vault_auth import (
    DEFAULT_K8S_TOKEN_FILE,
    AppRoleAuth,
    AuthMethod,
    KubernetesAuth,
    StaticTokenAuth,
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

# strconv.ParseBool, as the vault command reads VAULT_SKIP_VERIFY.
_TRUE: Final = frozenset({"1", "t", "true", "yes", "y", "on"})
_FALSE: Final = frozenset({"0", "f", "false", "no", "n", "off"})


@dataclass(frozen=True)
class VaultSettings:
    """Where Vault is, how to talk to it and how to log in.

    Attributes:
        addresses: API addresses, tried in this order (``VAULT_ADDR``).
        namespace: the Vault/OpenBao namespace (``VAULT_NAMESPACE``).
        ca_cert: a CA bundle to verify the server with (``VAULT_CACERT``).
        skip_verify: do not verify the certificate (``VAULT_SKIP_VERIFY``; development only).
        timeout_seconds: the timeout of every request (``VAULT_TIMEOUT``).
        max_retries: extra rounds over the addresses on failure (``VAULT_MAX_RETRIES``).
        secrets_path: where bare names are read (``VAULT_SECRETS_PATH``).
        auth: how to obtain a token (None: the caller supplies one).
    """

    addresses: tuple[str, ...]
    namespace: str | None = None
    ca_cert: str | None = None
    skip_verify: bool = False
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_retries: int = DEFAULT_MAX_RETRIES
    secrets_path: str = DEFAULT_SECRETS_PATH
    auth: AuthMethod | None = field(default=None, compare=False)

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

    @property
    def verify(self) -> bool | str:
        """What requests' ``verify`` gets: False, a CA bundle path, or True."""
        if self.skip_verify:
            return False
        return self.ca_cert or True

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> VaultSettings:
        """Read the ``VAULT_*`` variables.

        Raises:
            ConfigurationError: something is missing or malformed (the message names the variable).
        """

        def get(name: str) -> str:
            return environ.get(name, "").strip()

        env = current_environment(environ)
        development = env == "development"
        addr_text = get("VAULT_ADDR")
        auth = _auth_from_environ(environ)
        defaults: list[str] = []
        missing: list[str] = []
        if not addr_text:
            if development:
                addr_text = DEV_ADDR
                defaults.append("VAULT_ADDR")
            else:
                missing.append("VAULT_ADDR")
        if auth is None:
            if development:
                auth = StaticTokenAuth(_DEV_TOKEN, source="the development default token")
                defaults.append("VAULT_TOKEN")
            else:
                missing.append("VAULT_TOKEN")
        if missing:
            names = " and ".join(missing)
            how = []
            if "VAULT_ADDR" in missing:
                how.append("VAULT_ADDR (e.g. https://vault.example.com:8200) in the ConfigMap")
            if "VAULT_TOKEN" in missing:
                how.append(
                    "VAULT_TOKEN in the Secret (or AppRole: VAULT_ROLE_ID with VAULT_SECRET_ID or "
                    "VAULT_SECRET_ID_FILE; or Kubernetes auth: VAULT_K8S_ROLE)"
                )
            raise ConfigurationError(
                f"the Vault backend needs {names}, which {'is' if len(missing) == 1 else 'are'} "
                f"not set (YOSAI_ENV={env}). Set {'it' if len(missing) == 1 else 'them'} in the "
                f"environment, or in Kubernetes: {'; '.join(how)} under k8s/. For local "
                f"development against `vault server -dev`, set YOSAI_ENV=development to use "
                f"{DEV_ADDR}."
            )
        if defaults:
            _log.warning(
                "YOSAI_ENV=development and %s not set: using the development Vault server at %s "
                "with the dev root token (`bao server -dev -dev-root-token-id=root`)",
                " and ".join(defaults),
                addr_text if "VAULT_ADDR" in defaults else get("VAULT_ADDR"),
            )
        ca_cert = get("VAULT_CACERT") or None
        if ca_cert is not None and not Path(ca_cert).is_file():
            raise ConfigurationError(
                f"VAULT_CACERT={ca_cert} is not a readable file; point it at the PEM bundle of the "
                "CA that signed the Vault server's certificate"
            )
        return cls(
            addresses=tuple(a.strip().rstrip("/") for a in addr_text.split(",") if a.strip()),
            namespace=get("VAULT_NAMESPACE") or None,
            ca_cert=ca_cert,
            skip_verify=_bool(get("VAULT_SKIP_VERIFY"), "VAULT_SKIP_VERIFY"),
            timeout_seconds=_seconds(
                get("VAULT_TIMEOUT") or get("VAULT_CLIENT_TIMEOUT"), DEFAULT_TIMEOUT_SECONDS
            ),
            max_retries=_int(get("VAULT_MAX_RETRIES"), "VAULT_MAX_RETRIES", DEFAULT_MAX_RETRIES),
            secrets_path=get("VAULT_SECRETS_PATH").strip("/") or DEFAULT_SECRETS_PATH,
            auth=auth,
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


def _check_addr(addr: str) -> None:
    scheme, sep, rest = addr.partition("://")
    if not sep or scheme not in ("http", "https") or not rest.strip("/"):
        raise ConfigurationError(
            f"VAULT_ADDR entry {addr!r} is not an http:// or https:// address "
            "(e.g. https://vault.example.com:8200; several are separated by commas)"
        )


def _bool(raw: str, name: str) -> bool:
    if not raw:
        return False
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean; use true or false")


def _seconds(raw: str, default: float) -> float:
    if not raw:
        return default
    try:
        # The vault command accepts "30s"; accept a bare number of seconds too.
        return float(raw.removesuffix("s"))
    except ValueError:
        raise ConfigurationError(
            f"VAULT_TIMEOUT={raw!r} is not a number of seconds; set it to e.g. 5"
        ) from None


def _int(raw: str, name: str, default: int) -> int:
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number; e.g. 2") from None
