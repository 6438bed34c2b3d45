"""Short Vault sessions for incident steps, built as reading builds its backend.

Each session is a :class:`~yosai_secrets.backends.vault.VaultBackend` made from
:meth:`~yosai_secrets.backends.vault_settings.VaultSettings.from_environ` (the application's
addresses, TLS, namespace, timeouts, retries and login), without a renewer thread, and closed at
the end; a token it obtained by logging in is revoked then. Also what the token and secret id
halves of the revoke step share: how a credential is matched against the leaked values, and the
:class:`Part` each half reports.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BackendAuthError, BackendError, ConfigurationError
from .outcome import Status

if TYPE_CHECKING:
    from ..backends.vault import VaultBackend
    from ..backends.vault_settings import VaultSettings

__all__ = [
    "Part",
    "leaked_as",
    "login_refused",
    "reason_of",
    "settings_from",
    "short_session",
    "status_of",
    "token_refused",
]

_log = logging.getLogger("yosai_secrets.audit.revoke")


@dataclass(frozen=True, slots=True)
class Part:
    """What one half of the token step did (the token, or the secret id): a status and detail."""

    status: Status
    detail: str


def leaked_as(value: str, leaked: Mapping[str, str]) -> list[str]:
    """The names under which ``value`` leaked, compared in constant time (every one is compared)."""
    if not value:
        return []
    wanted = value.encode("utf-8")
    return [
        name
        for name, candidate in leaked.items()
        if candidate and hmac.compare_digest(wanted, candidate.encode("utf-8"))
    ]


def reason_of(exc: BaseException) -> str:
    """One of our (scrubbed) messages, or only the type of anything else."""
    return str(exc) if isinstance(exc, ConfigurationError) else type(exc).__name__


def settings_from(environ: Mapping[str, str]) -> VaultSettings:
    """The ``VAULT_*`` settings, read exactly as the Vault backend reads them.

    Raises:
        ConfigurationError: a variable is missing or malformed (the message names it).
    """
    from ..backends.vault_settings import VaultSettings

    return VaultSettings.from_environ(environ)


@contextmanager
def short_session(settings: VaultSettings, token: str | None = None) -> Iterator[VaultBackend]:
    """A backend for one short operation: the settings' auth, or ``token``; no renewer thread.

    A token this backend obtained by logging in (AppRole) is revoked when done: it was made for
    this operation only, with credentials that may be the leaked ones.
    """
    from ..backends.vault import VaultBackend
    from ..backends.vault_auth import StaticTokenAuth

    auth = StaticTokenAuth(token, source="VAULT_TOKEN") if token is not None else None
    backend = VaultBackend(settings=settings, auth=auth)
    try:
        yield backend
    finally:
        if backend.keeper.method.can_login and backend.keeper.token is not None:
            try:
                backend.request("POST", "auth/token/revoke-self", {})
            except BackendError as exc:
                _log.debug("could not revoke the incident's own login token: %s", reason_of(exc))
        backend.close()


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a refused Vault request (None: not a refusal)."""
    from ..backends.vault_http import VaultStatusError

    return exc.status if isinstance(exc, VaultStatusError) else None


def token_refused(settings: VaultSettings, token: str) -> bool | None:
    """Whether Vault now refuses ``token`` (lookup-self); None when that cannot be told."""
    try:
        with short_session(settings, token) as backend:
            backend.request("GET", "auth/token/lookup-self")
    except ConfigurationError as exc:
        return True if status_of(exc) in (401, 403) else None
    return False


def login_refused(settings: VaultSettings) -> bool | None:
    """Whether an AppRole login with the configured secret id is now refused."""
    try:
        with short_session(settings) as backend:
            backend.request("GET", "auth/token/lookup-self")
    except BackendAuthError:
        return True
    except ConfigurationError:
        return None
    return False
