"""Revocations an incident needs: the Vault token and AppRole secret id in use, Vault leases, and
the Auth0 client secret.

Each function is one step of ``yosai-secrets incident`` and returns its
:class:`~.outcome.StepOutcome`: nothing raises, and no detail holds a value (names, paths, token
accessors and counts only). Vault is reached through
:class:`~yosai_secrets.backends.vault.VaultBackend` built from the same ``VAULT_*`` variables as
reading (:meth:`~yosai_secrets.backends.vault_settings.VaultSettings.from_environ`), so the
addresses, TLS, namespace, timeouts and retries are the application's own (:mod:`.vault_session`);
the AppRole secret id half lives in :mod:`.secret_id`.

The Auth0 client secret is rotated with the Management API (:mod:`.auth0_mgmt` documents the
``AUTH0_MGMT_*`` variables); without them the step is a manual one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, ParamSpec

from ..errors import ConfigurationError
from ..secret import Secret
from .outcome import Status, StepOutcome
from .secret_id import secret_id_part
from .vault_session import (
    Part,
    leaked_as,
    reason_of,
    settings_from,
    short_session,
    status_of,
    token_refused,
)

if TYPE_CHECKING:
    from ..backends.vault import VaultBackend
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
    parts: list[Part] = []
    token = environ.get("VAULT_TOKEN", "").strip()
    names = leaked_as(token, leaked)
    if names:
        parts.append(_revoke_token(settings, token, names))
    destroyed = secret_id_part(settings, leaked)
    if destroyed is not None:
        parts.append(destroyed)
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
        leaked_as(environ.get(name, "").strip(), leaked)
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


def _revoke_token(settings: VaultSettings, token: str, names: list[str]) -> Part:
    """Revoke the leaked ``VAULT_TOKEN``, then check that Vault refuses it."""
    what = f"VAULT_TOKEN (leaked as {', '.join(names)})"
    in_use = settings.auth is None or not settings.auth.can_login
    how: str | Part | None = None if in_use else _revoke_by_accessor(settings, token)
    if how is None:
        how = _revoke_self(settings, token)
    if isinstance(how, Part):
        return how
    refused = token_refused(settings, token)
    if refused:
        return Part(Status.DONE, f"{what} {how}; checked: Vault now refuses it (lookup-self)")
    if refused is None:
        return Part(
            Status.FAILED, f"{what} {how}; but whether Vault now refuses it could not be checked"
        )
    return Part(
        Status.FAILED,
        f"{what}: {how}, yet Vault still accepts it; revoke it by hand: "
        "bao token revoke -self (with VAULT_TOKEN set to it)",
    )


def _revoke_self(settings: VaultSettings, token: str) -> str | Part:
    """Revoke ``token`` with itself; say how (or why not)."""
    try:
        with short_session(settings, token) as backend:
            accessor = _accessor(backend)
            _log.info("revoking VAULT_TOKEN%s with auth/token/revoke-self", accessor)
            backend.request("POST", "auth/token/revoke-self", {})
    except ConfigurationError as exc:
        if status_of(exc) in (401, 403):
            return "was refused by revoke-self (already revoked or expired?)"
        return Part(Status.FAILED, f"VAULT_TOKEN could not be revoked: {reason_of(exc)}")
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
