"""Vault/OpenBao auth methods: a static token, AppRole, Kubernetes.

Each method obtains a token (:class:`Login`); keeping it alive is
:class:`~yosai_secrets.backends.vault_token.TokenKeeper`'s job. Tokens, secret ids and JWTs never
appear in a repr, a log line or an exception message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from ..errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    SecretFileError,
    SecretNotFoundError,
)
from .file import read_secret_file, shown_path

__all__ = [
    "DEFAULT_K8S_TOKEN_FILE",
    "AppRoleAuth",
    "AuthMethod",
    "KubernetesAuth",
    "Login",
    "Send",
    "StaticTokenAuth",
    "auth_block",
    "short_reason",
]

_log = logging.getLogger("yosai_secrets.backends.vault")

DEFAULT_K8S_TOKEN_FILE: Final = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105


class Send(Protocol):
    """The transport the auth layer calls: method, API path, JSON body, token to send."""

    def __call__(
        self, method: str, path: str, body: dict[str, Any] | None, token: str | None
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Login:
    """A token and what the server said about its life."""

    token: str = field(repr=False)
    ttl_seconds: float
    renewable: bool


class AuthMethod(Protocol):
    """How a token is obtained. ``can_login`` says whether a new one can be had after expiry."""

    description: str
    can_login: bool

    def login(self, send: Send) -> Login:
        """Obtain a token (or, for a static token, learn its TTL)."""
        ...


def auth_block(response: dict[str, Any], what: str) -> Login:
    """The token and its life from a login or renewal answer."""
    auth = response.get("auth")
    if not isinstance(auth, dict) or not auth.get("client_token"):
        raise BackendAuthError(f"{what}: the server's answer carried no token", backend="vault")
    return Login(
        token=str(auth["client_token"]),
        ttl_seconds=float(auth.get("lease_duration") or 0),
        renewable=bool(auth.get("renewable")),
    )


def fits_a_header(value: str) -> bool:
    """Whether ``value`` can be sent as an HTTP header value as it is (printable ASCII)."""
    return value.isascii() and value.isprintable() and value == value.strip()


class StaticTokenAuth:
    """A token given ready-made (``VAULT_TOKEN``); it can be renewed but not re-obtained."""

    can_login = False

    def __init__(self, token: str, *, source: str = "VAULT_TOKEN") -> None:
        if not token:
            raise ConfigurationError(f"{source} is empty; set it to a Vault token")
        if not fits_a_header(token):
            # Never repeated: a CR/LF or a non-ASCII letter would only reach http.client's own
            # ValueError, which quotes the whole header value.
            raise ConfigurationError(
                f"{source} holds a character an HTTP header cannot carry (a space, a line "
                "break, a non-ASCII letter); set it to the token alone"
            )
        self._token = token
        self.description = f"the token from {source}"

    def __repr__(self) -> str:
        return f"StaticTokenAuth({self.description!r})"

    def token_without_lookup(self) -> str:
        """The token itself, to use before its TTL is known (the keeper looks it up later)."""
        return self._token

    def login(self, send: Send) -> Login:
        """Look the token up to learn its TTL; a refused lookup leaves it as never expiring."""
        try:
            data = send("GET", "auth/token/lookup-self", None, self._token).get("data") or {}
        except BackendUnavailableError:
            raise
        except BackendError:
            # A policy may deny lookup-self; the reads will tell whether the token works.
            return Login(self._token, 0.0, False)
        return Login(
            token=self._token,
            ttl_seconds=float(data.get("ttl") or 0),
            renewable=bool(data.get("renewable")),
        )


class AppRoleAuth:
    """AppRole login (``VAULT_ROLE_ID`` with ``VAULT_SECRET_ID`` or ``VAULT_SECRET_ID_FILE``).

    The secret id file is read at each login, so a rotated secret id is picked up.
    """

    can_login = True

    def __init__(
        self,
        role_id: str,
        *,
        secret_id: str | None = None,
        secret_id_file: str | Path | None = None,
        mount: str = "approle",
    ) -> None:
        if not role_id:
            raise ConfigurationError("VAULT_ROLE_ID is empty; set it to the AppRole's role id")
        if not secret_id and not secret_id_file:
            raise ConfigurationError(
                "AppRole login needs a secret id: set VAULT_SECRET_ID, or VAULT_SECRET_ID_FILE to "
                "a file holding it (e.g. a mounted Kubernetes Secret)"
            )
        self._role_id = role_id
        self._secret_id = secret_id
        self._secret_id_file = Path(secret_id_file) if secret_id_file else None
        self.mount = mount.strip("/") or "approle"
        self.description = f"AppRole login at auth/{self.mount}"

    def __repr__(self) -> str:
        return f"AppRoleAuth(mount={self.mount!r})"

    def _read_secret_id(self) -> str:
        if self._secret_id:
            return self._secret_id
        if self._secret_id_file is None:  # __init__ requires one of the two; typed out here
            raise ConfigurationError("AppRole login needs VAULT_SECRET_ID or VAULT_SECRET_ID_FILE")
        return read_credential_file(
            self._secret_id_file,
            "the AppRole secret id file",
            "VAULT_SECRET_ID_FILE",
            "point it at the file holding the secret id",
        )

    def login(self, send: Send) -> Login:
        """Log in with the role id and secret id."""
        body = {"role_id": self._role_id, "secret_id": self._read_secret_id()}
        try:
            response = send("POST", f"auth/{self.mount}/login", body, None)
        except BackendUnavailableError:
            raise
        except BackendError as exc:
            raise BackendAuthError(
                f"{self.description} was refused ({short_reason(exc)}); check VAULT_ROLE_ID "
                "and the secret id (it may be expired or used up)",
                backend="vault",
            ) from None
        return auth_block(response, self.description)


def read_credential_file(path: Path, what: str, variable: str, fix: str) -> str:
    """Read a login credential from ``path`` as a secret file is read (bounded, regular only).

    A FIFO, ``/dev/zero``, a directory, a huge, empty or non-UTF-8 file is refused at once,
    never waited on or read to the end; the message names the file, never its content.

    Raises:
        BackendAuthError: the file is missing or unusable (naming ``variable`` and ``fix``).
    """
    try:
        return read_secret_file(path, what=what).strip()
    except SecretNotFoundError:
        problem = f"{what} {shown_path(str(path))} does not exist"
    except SecretFileError as exc:
        problem = str(exc)
    raise BackendAuthError(f"{problem} ({variable}); {fix}", backend="vault")


class KubernetesAuth:
    """Kubernetes login (``VAULT_K8S_ROLE``) with the pod's service-account token.

    The token file is read at each login, since projected service-account tokens rotate.
    """

    can_login = True

    def __init__(
        self,
        role: str,
        *,
        token_file: str | Path = DEFAULT_K8S_TOKEN_FILE,
        mount: str = "kubernetes",
    ) -> None:
        if not role:
            raise ConfigurationError("VAULT_K8S_ROLE is empty; set it to the Vault role's name")
        self.role = role
        self.token_file = Path(token_file)
        self.mount = mount.strip("/") or "kubernetes"
        self.description = f"Kubernetes login at auth/{self.mount} as role {role!r}"

    def __repr__(self) -> str:
        return f"KubernetesAuth(role={self.role!r}, mount={self.mount!r})"

    def login(self, send: Send) -> Login:
        """Log in with the service-account token."""
        jwt = read_credential_file(
            self.token_file,
            f"{self.description}: the service-account token file",
            "VAULT_K8S_TOKEN_FILE",
            "set VAULT_K8S_TOKEN_FILE or mount the service-account token",
        )
        try:
            response = send(
                "POST", f"auth/{self.mount}/login", {"role": self.role, "jwt": jwt}, None
            )
        except BackendUnavailableError:
            raise
        except BackendError as exc:
            raise BackendAuthError(
                f"{self.description} was refused ({short_reason(exc)}); check the role's bound "
                "service accounts and namespaces",
                backend="vault",
            ) from None
        return auth_block(response, self.description)


def short_reason(exc: BackendError) -> str:
    """The first clause of one of our (already scrubbed) messages."""
    return str(exc).split(";")[0]
