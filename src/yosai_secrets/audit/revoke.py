"""Revocations an incident needs: the Vault token and AppRole secret id in use, Vault leases, and
the Auth0 client secret.

Each function is one step of ``yosai-secrets incident`` and returns its
:class:`~.outcome.StepOutcome`: nothing raises, and no detail holds a value (names, paths, token
accessors and counts only). Vault is reached through
:class:`~yosai_secrets.backends.vault.VaultBackend` built from the same ``VAULT_*`` variables as
reading (:meth:`~yosai_secrets.backends.vault_settings.VaultSettings.from_environ`), so the
addresses, TLS, namespace, timeouts and retries are the application's own.

The Auth0 client secret is rotated with the Management API (:mod:`.auth0_mgmt` documents the
``AUTH0_MGMT_*`` variables); without them the step is a manual one.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, ParamSpec

from ..errors import BackendAuthError, BackendError, ConfigurationError
from ..secret import Secret
from .outcome import Status, StepOutcome
from .vault_session import (
    login_refused,
    reason_of,
    settings_from,
    short_session,
    status_of,
    token_refused,
)

if TYPE_CHECKING:
    from ..backends.vault import VaultBackend
    from ..backends.vault_auth import AppRoleAuth
    from ..backends.vault_settings import VaultSettings

__all__ = [
    "AUTH0_STEP",
    "LEASES_STEP",
    "TOKEN_STEP",
    "revoke_leases",
    "revoke_vault_token",
    "rotate_auth0_client_secret",
]

_log = logging.getLogger("yosai_secrets.audit.revoke")

TOKEN_STEP: Final = "revoke the leaked Vault token / AppRole secret id"  # noqa: S105 (a label)
LEASES_STEP: Final = "revoke Vault leases"
AUTH0_STEP: Final = "rotate the Auth0 client secret"

_ORDER: Final = (Status.FAILED, Status.MANUAL, Status.DONE)
_P = ParamSpec("_P")


@dataclass(frozen=True, slots=True)
class _Part:
    """What one half of the token step did (the token, or the secret id)."""

    status: Status
    detail: str


def _now() -> datetime:
    return datetime.now(UTC)


def _outcome(step: str, started: datetime, status: Status, detail: str) -> StepOutcome:
    return StepOutcome(step, status, detail, started=started, finished=_now())


def _contained(step: str) -> Callable[[Callable[_P, StepOutcome]], Callable[_P, StepOutcome]]:
    """Make a step return a FAILED outcome for any error it did not expect, never raise it."""

    def wrap(func: Callable[_P, StepOutcome]) -> Callable[_P, StepOutcome]:
        @functools.wraps(func)
        def run(*args: _P.args, **kwargs: _P.kwargs) -> StepOutcome:
            started = _now()
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                # Only our scrubbed messages are shown; anything else by its type alone.
                _log.warning("%s: unexpected %s", step, type(exc).__name__)
                return _outcome(step, started, Status.FAILED, f"unexpected error: {reason_of(exc)}")

        return run

    return wrap


def _leaked_as(value: str, leaked: Mapping[str, str]) -> list[str]:
    """The names under which ``value`` leaked, compared in constant time (every one is compared)."""
    if not value:
        return []
    wanted = value.encode("utf-8")
    return [
        name
        for name, candidate in leaked.items()
        if candidate and hmac.compare_digest(wanted, candidate.encode("utf-8"))
    ]


# -- the Vault token -------------------------------------------------------------------------------


@_contained(TOKEN_STEP)
def revoke_vault_token(environ: Mapping[str, str], leaked: Mapping[str, str]) -> StepOutcome:
    """Revoke ``VAULT_TOKEN`` and destroy the AppRole secret id in use when they leaked.

    ``leaked`` maps key names to the leaked values. The token is revoked with revoke-self, or by
    accessor when the application logs in otherwise (AppRole) and that token may; the secret id
    is destroyed at ``auth/<mount>/role/<role>/secret-id/destroy``. Both are then checked: the
    token's lookup-self and a login with the secret id must be refused. SKIPPED when neither
    leaked; MANUAL when the token in hand may not destroy the secret id (the detail says what to
    run).
    """
    started = _now()
    try:
        settings = settings_from(environ)
    except ConfigurationError as exc:
        return _unusable(environ, leaked, started, exc)
    parts: list[_Part] = []
    token = environ.get("VAULT_TOKEN", "").strip()
    names = _leaked_as(token, leaked)
    if names:
        parts.append(_revoke_token(settings, token, names))
    secret_id_part = _secret_id_part(settings, leaked)
    if secret_id_part is not None:
        parts.append(secret_id_part)
    if not parts:
        return _outcome(
            TOKEN_STEP,
            started,
            Status.SKIPPED,
            "neither VAULT_TOKEN nor the AppRole secret id in use is among the leaked values",
        )
    status = next(s for s in _ORDER if any(p.status is s for p in parts))
    return _outcome(TOKEN_STEP, started, status, "; ".join(p.detail for p in parts))


def _unusable(
    environ: Mapping[str, str], leaked: Mapping[str, str], started: datetime, exc: Exception
) -> StepOutcome:
    """Vault's settings are unusable: a failure when a credential in them may have leaked."""
    suspect = any(
        _leaked_as(environ.get(name, "").strip(), leaked)
        for name in ("VAULT_TOKEN", "VAULT_SECRET_ID")
    )
    if suspect or environ.get("VAULT_SECRET_ID_FILE", "").strip():
        return _outcome(
            TOKEN_STEP, started, Status.FAILED, f"cannot reach Vault to revoke: {reason_of(exc)}"
        )
    return _outcome(
        TOKEN_STEP,
        started,
        Status.SKIPPED,
        "Vault is not configured here, and neither VAULT_TOKEN nor VAULT_SECRET_ID leaked",
    )


def _revoke_token(settings: VaultSettings, token: str, names: list[str]) -> _Part:
    """Revoke the leaked ``VAULT_TOKEN``, then check that Vault refuses it."""
    what = f"VAULT_TOKEN (leaked as {', '.join(names)})"
    in_use = settings.auth is None or not settings.auth.can_login
    how: str | _Part | None = None if in_use else _revoke_by_accessor(settings, token)
    if how is None:
        how = _revoke_self(settings, token)
    if isinstance(how, _Part):
        return how
    refused = token_refused(settings, token)
    if refused:
        return _Part(Status.DONE, f"{what} {how}; checked: Vault now refuses it (lookup-self)")
    if refused is None:
        return _Part(
            Status.FAILED, f"{what} {how}; but whether Vault now refuses it could not be checked"
        )
    return _Part(
        Status.FAILED,
        f"{what}: {how}, yet Vault still accepts it; revoke it by hand: "
        "bao token revoke -self (with VAULT_TOKEN set to it)",
    )


def _revoke_self(settings: VaultSettings, token: str) -> str | _Part:
    """Revoke ``token`` with itself; say how (or why not)."""
    try:
        with short_session(settings, token) as backend:
            accessor = _accessor(backend)
            _log.info("revoking VAULT_TOKEN%s with auth/token/revoke-self", accessor)
            backend.request("POST", "auth/token/revoke-self", {})
    except ConfigurationError as exc:
        if status_of(exc) in (401, 403):
            return "was refused by revoke-self (already revoked or expired?)"
        return _Part(Status.FAILED, f"VAULT_TOKEN could not be revoked: {reason_of(exc)}")
    return f"revoked with auth/token/revoke-self{accessor}, its child tokens with it"


def _accessor(backend: VaultBackend) -> str:
    """`` (accessor X)`` for the report, or nothing when the token may not look itself up."""
    try:
        data = backend.request("GET", "auth/token/lookup-self").get("data") or {}
    except ConfigurationError:
        return ""
    accessor = data.get("accessor")
    return f" (accessor {accessor})" if isinstance(accessor, str) and accessor else ""


def _revoke_by_accessor(settings: VaultSettings, token: str) -> str | None:
    """Revoke ``token`` by accessor with the application's own login; None if not allowed."""
    try:
        with short_session(settings) as backend:
            data = backend.request("POST", "auth/token/lookup", {"token": token}).get("data")
            accessor = data.get("accessor") if isinstance(data, dict) else None
            if not isinstance(accessor, str) or not accessor:
                return None
            _log.info("revoking VAULT_TOKEN by accessor %s", accessor)
            backend.request("POST", "auth/token/revoke-accessor", {"accessor": accessor})
    except ConfigurationError as exc:
        _log.info(
            "revoking VAULT_TOKEN by accessor failed (%s); trying revoke-self", reason_of(exc)
        )
        return None
    return (
        f"revoked by accessor {accessor} (auth/token/revoke-accessor, with "
        f"{settings.auth.description if settings.auth else 'the configured login'})"
    )


# -- the AppRole secret id -------------------------------------------------------------------------


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


def _secret_id_part(settings: VaultSettings, leaked: Mapping[str, str]) -> _Part | None:
    """Destroy the AppRole secret id in use when it leaked (None: no AppRole, or not leaked)."""
    method = _approle(settings)
    if method is None:
        return None
    try:
        secret_id = _secret_id_in_use(method)
    except ConfigurationError as exc:
        return _Part(Status.FAILED, f"could not read the AppRole secret id to compare: {exc}")
    names = _leaked_as(secret_id, leaked)
    if not names:
        return None
    try:
        return _destroy_secret_id(settings, method, secret_id, f"leaked as {', '.join(names)}")
    except ConfigurationError as exc:
        return _Part(Status.FAILED, f"the AppRole secret id was not destroyed: {reason_of(exc)}")


def _destroy_secret_id(
    settings: VaultSettings, method: AppRoleAuth, secret_id: str, leaked_as: str
) -> _Part:
    what = f"the AppRole secret id in use ({leaked_as})"
    login = f"auth/{method.mount}/login"
    with short_session(settings) as backend:
        try:
            meta = (backend.request("GET", "auth/token/lookup-self").get("data") or {}).get("meta")
        except BackendAuthError:
            return _Part(Status.DONE, f"{what} is already refused at {login}: nothing to destroy")
        except BackendError as exc:
            return _Part(Status.FAILED, f"{what}: could not log in with it ({reason_of(exc)})")
        role = meta.get("role_name") if isinstance(meta, dict) else None
        if not isinstance(role, str) or not role:
            return _Part(Status.MANUAL, f"{what}: {_destroy_by_hand(method.mount, None)}")
        path = f"auth/{method.mount}/role/{role}/secret-id/destroy"
        _log.info("destroying the AppRole secret id in use at %s", path)
        try:
            backend.request("POST", path, {"secret_id": secret_id})
        except BackendError as exc:
            if status_of(exc) == 403:
                return _Part(Status.MANUAL, f"{what}: {_destroy_by_hand(method.mount, role)}")
            return _Part(
                Status.FAILED, f"{what} could not be destroyed at {path}: {reason_of(exc)}"
            )
    return _checked_destroy(settings, what, path, login, method.mount)


def _checked_destroy(
    settings: VaultSettings, what: str, path: str, login: str, mount: str
) -> _Part:
    """Say the secret id was destroyed at ``path``, once a login with it is refused."""
    after = (
        f"tokens already issued with it stay valid until they expire (revoke them all with "
        f"--revoke-prefix {login}, which logs every instance out)"
    )
    refused = login_refused(settings)
    if refused:
        return _Part(
            Status.DONE, f"{what} destroyed at {path}; checked: {login} refuses it; {after}"
        )
    if refused is None:
        return _Part(Status.FAILED, f"{what} destroyed at {path}; the login could not be checked")
    return _Part(Status.FAILED, f"{what}: {path} answered, yet {login} still accepts it")


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


# -- leases ----------------------------------------------------------------------------------------


@_contained(LEASES_STEP)
def revoke_leases(environ: Mapping[str, str], prefix: str) -> StepOutcome:
    """Revoke every Vault lease under ``prefix`` (``sys/leases/revoke-prefix/<prefix>``).

    The prefix is refused when empty (that would revoke every lease) or when it holds ``.``,
    ``..`` or empty segments, as references are. The leases listed under the prefix are counted
    before, and the listing is checked to be empty after (both need ``sudo`` on ``sys/leases``).
    """
    started = _now()
    clean = prefix.strip().strip("/")
    problem = _bad_prefix(clean)
    if problem:
        return _outcome(LEASES_STEP, started, Status.FAILED, f"lease prefix refused: {problem}")
    try:
        with short_session(settings_from(environ)) as backend:
            before = _listed(backend, clean)
            _log.info("revoking every Vault lease under %s/", clean)
            backend.request("PUT", f"sys/leases/revoke-prefix/{clean}", {})
            after = _listed(backend, clean)
    except ConfigurationError as exc:
        denied = " (it needs sudo on sys/leases/revoke-prefix)" if status_of(exc) == 403 else ""
        return _outcome(
            LEASES_STEP,
            started,
            Status.FAILED,
            f"leases under {clean}/ were not revoked{denied}: {reason_of(exc)}; run "
            f"`bao lease revoke -prefix {clean}` with a token allowed to",
        )
    counted = {None: "", 0: " (nothing was listed under it: is the prefix right?)"}.get(
        before, f" ({before} entries were listed under it)"
    )
    if after:
        return _outcome(
            LEASES_STEP,
            started,
            Status.FAILED,
            f"revoke-prefix {clean}/ answered{counted}, yet {after} entries are still listed",
        )
    checked = "" if after is None else "; checked: none is listed now"
    return _outcome(
        LEASES_STEP, started, Status.DONE, f"revoked every lease under {clean}/{counted}{checked}"
    )


def _bad_prefix(prefix: str) -> str | None:
    """Why ``prefix`` may not be revoked, or None."""
    if not prefix:
        return (
            "an empty prefix would revoke every lease in Vault; name one, e.g. database/creds/app"
        )
    from ..references import check_name

    try:
        check_name("vault", prefix, prefix)  # the check every vault: reference passes
    except ConfigurationError as exc:
        return str(exc)
    return None


def _listed(backend: VaultBackend, prefix: str) -> int | None:
    """How many entries ``sys/leases/lookup`` lists under ``prefix`` (None: not allowed to ask)."""
    try:
        data = backend.request("GET", f"sys/leases/lookup/{prefix}?list=true").get("data")
    except ConfigurationError as exc:
        return 0 if status_of(exc) == 404 else None
    keys = data.get("keys") if isinstance(data, dict) else None
    return len(keys) if isinstance(keys, list) else 0


# -- the Auth0 client secret -----------------------------------------------------------------------


@_contained(AUTH0_STEP)
def rotate_auth0_client_secret(
    environ: Mapping[str, str], persist: Callable[[Secret], None], rescue_dir: Path
) -> StepOutcome:
    """Rotate ``AUTH0_CLIENT_ID``'s client secret with the Auth0 Management API.

    The new secret is handed to ``persist`` at once, before anything else. Should ``persist``
    fail, the secret is written to a private (0600) file in ``rescue_dir`` and the detail names
    that file (never the value), so that it is not lost: Auth0 has already dropped the old one.
    MANUAL when the ``AUTH0_MGMT_*`` credentials are not configured.
    """
    from . import auth0_mgmt

    started = _now()
    try:
        config = auth0_mgmt.config_from_environ(environ)
        if config is None:
            return _outcome(AUTH0_STEP, started, Status.MANUAL, auth0_mgmt.MANUAL_STEP)
        _log.info("rotating the client secret of Auth0 application %s", config.client_id)
        new_secret = auth0_mgmt.rotate_client_secret(config)
    except ConfigurationError as exc:
        return _outcome(AUTH0_STEP, started, Status.FAILED, reason_of(exc))
    kept, detail = auth0_mgmt.keep_new_secret(new_secret, persist, rescue_dir, config.client_id)
    status = Status.DONE if kept else Status.FAILED
    where = f"the client secret of Auth0 application {config.client_id} was rotated ({config.api})"
    return _outcome(AUTH0_STEP, started, status, f"{where}; {detail}")
