"""The AppRole secret id in use, when it leaked: destroyed, then checked to be refused.

The role's name comes from the token metadata of an AppRole login (``role_name``); the secret
id is destroyed at ``auth/<mount>/role/<role>/secret-id/destroy``, and a login with it must then
be refused. When the login's token may not destroy it, the detail says what to run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import BackendAuthError, BackendError, ConfigurationError
from .outcome import Status
from .vault_session import Part, leaked_as, login_refused, reason_of, short_session, status_of

if TYPE_CHECKING:
    from ..backends.vault_auth import AppRoleAuth
    from ..backends.vault_settings import VaultSettings

__all__ = ["secret_id_part"]

_log = logging.getLogger("yosai_secrets.audit.revoke")


def _approle(settings: VaultSettings) -> AppRoleAuth | None:
    from ..backends.vault_auth import AppRoleAuth

    return settings.auth if isinstance(settings.auth, AppRoleAuth) else None


class _NotSent(Exception):
    """Stops a login request after it was recorded (see :func:`_secret_id_in_use`)."""


def _secret_id_in_use(approle: AppRoleAuth) -> str:
    """The secret id exactly as the AppRole login reads it (``VAULT_SECRET_ID`` or its file).

    AppRoleAuth has no public reader of its secret id, so its public ``login(send)`` is given a
    transport that records the request and sends nothing: the one reader of those variables.

    Raises:
        BackendAuthError: the secret id file cannot be read (the message names it).
    """
    seen: list[str] = []

    def record(
        method: str, path: str, body: dict[str, Any] | None, token: str | None
    ) -> dict[str, Any]:
        seen.append(str((body or {}).get("secret_id") or ""))
        raise _NotSent

    with contextlib.suppress(_NotSent):
        approle.login(record)
    return seen[0] if seen else ""


def secret_id_part(settings: VaultSettings, leaked: Mapping[str, str]) -> Part | None:
    """Destroy the AppRole secret id in use when it leaked (None: no AppRole, or not leaked)."""
    method = _approle(settings)
    if method is None:
        return None
    try:
        secret_id = _secret_id_in_use(method)
    except ConfigurationError as exc:
        return Part(Status.FAILED, f"could not read the AppRole secret id to compare: {exc}")
    names = leaked_as(secret_id, leaked)
    if not names:
        return None
    try:
        return _destroy_secret_id(settings, method, secret_id, f"leaked as {', '.join(names)}")
    except ConfigurationError as exc:
        return Part(Status.FAILED, f"the AppRole secret id was not destroyed: {reason_of(exc)}")


def _destroy_secret_id(
    settings: VaultSettings, method: AppRoleAuth, secret_id: str, leaked_as: str
) -> Part:
    what = f"the AppRole secret id in use ({leaked_as})"
    login = f"auth/{method.mount}/login"
    with short_session(settings) as backend:
        try:
            meta = (backend.request("GET", "auth/token/lookup-self").get("data") or {}).get("meta")
        except BackendAuthError:
            return Part(Status.DONE, f"{what} is already refused at {login}: nothing to destroy")
        except BackendError as exc:
            return Part(Status.FAILED, f"{what}: could not log in with it ({reason_of(exc)})")
        role = meta.get("role_name") if isinstance(meta, dict) else None
        if not isinstance(role, str) or not role:
            return Part(Status.MANUAL, f"{what}: {_destroy_by_hand(method.mount, None)}")
        path = f"auth/{method.mount}/role/{role}/secret-id/destroy"
        _log.info("destroying the AppRole secret id in use at %s", path)
        try:
            backend.request("POST", path, {"secret_id": secret_id})
        except BackendError as exc:
            if status_of(exc) == 403:
                return Part(Status.MANUAL, f"{what}: {_destroy_by_hand(method.mount, role)}")
            return Part(Status.FAILED, f"{what} could not be destroyed at {path}: {reason_of(exc)}")
    return _checked_destroy(settings, what, path, login, method.mount)


def _checked_destroy(settings: VaultSettings, what: str, path: str, login: str, mount: str) -> Part:
    """Say the secret id was destroyed at ``path``, once a login with it is refused."""
    after = (
        f"tokens already issued with it stay valid until they expire (revoke them all with "
        f"--revoke-prefix {login}, which logs every instance out)"
    )
    refused = login_refused(settings)
    if refused:
        return Part(
            Status.DONE, f"{what} destroyed at {path}; checked: {login} refuses it; {after}"
        )
    if refused is None:
        return Part(Status.FAILED, f"{what} destroyed at {path}; the login could not be checked")
    return Part(Status.FAILED, f"{what}: {path} answered, yet {login} still accepts it")


def _destroy_by_hand(mount: str, role: str | None) -> str:
    """What an operator with a token allowed to destroy secret ids runs."""
    find = ""
    if role is None:
        role = "ROLE"
        find = (
            f"find the role whose role-id is VAULT_ROLE_ID (bao list auth/{mount}/role; "
            f"bao read auth/{mount}/role/NAME/role-id), then "
        )
    return (
        f"the token of the login may not destroy it: {find}with a token allowed to, run "
        f"`bao write auth/{mount}/role/{role}/secret-id/destroy secret_id=-` and give the leaked "
        "secret id on standard input"
    )
