"""The two Auth0 Management API calls an incident needs: a token, then rotate-secret.

Variables (read by :func:`config_from_environ`):

* ``AUTH0_MGMT_DOMAIN``, else ``AUTH0_DOMAIN``: the tenant, e.g. ``tenant.eu.auth0.com``.
* ``AUTH0_MGMT_CLIENT_ID`` and ``AUTH0_MGMT_CLIENT_SECRET``: a machine-to-machine application
  authorised for the Auth0 Management API with the ``update:client_keys`` scope.
* ``AUTH0_CLIENT_ID``: the application whose client secret is rotated (the application's own).
* ``AUTH0_MGMT_TIMEOUT``: the seconds each call may take (default 10).
* ``AUTH0_MGMT_BASE_URL``: **for tests only**, the address called instead of ``https://DOMAIN``
  (a local stand-in); plain ``http://`` is accepted for loopback addresses only. The token's
  audience stays ``https://DOMAIN/api/v2/``.

The token comes from ``POST /oauth/token`` (client credentials); the secret is rotated by
``POST /api/v2/clients/{AUTH0_CLIENT_ID}/rotate-secret``, whose answer holds the new
``client_secret``. Every call has a deadline and follows no redirect (the credentials and the
token go to the tenant and nowhere else). Errors name the call and its status, never a value.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from ..envvars import env_seconds
from ..errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
)
from ..fileio import atomic_write_text
from ..netinfo import failure_reason, is_loopback
from ..secret import Secret, register_secret_value

__all__ = [
    "MANUAL_STEP",
    "Auth0Management",
    "config_from_environ",
    "keep_new_secret",
    "rotate_client_secret",
]

MANUAL_STEP: Final = (
    "no Auth0 Management API credentials (AUTH0_MGMT_CLIENT_ID and AUTH0_MGMT_CLIENT_SECRET, "
    "with AUTH0_MGMT_DOMAIN or AUTH0_DOMAIN): rotate the client secret in the Auth0 Dashboard "
    "(Applications → Applications → the application → Settings → Danger Zone → Rotate), then "
    "store the new one (Credentials tab) as AUTH0_CLIENT_SECRET"
)
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
_MAX_ANSWER_BYTES: Final = 64 * 1024
_HOST: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?")
_CODE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_ .:-]{0,60}")
_BACKEND: Final = "auth0"


@dataclass(frozen=True)
class Auth0Management:
    """Where and as whom to call the Management API, and which application to rotate."""

    domain: str
    base_url: str
    mgmt_client_id: str
    mgmt_client_secret: str = field(repr=False)
    client_id: str
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    @property
    def audience(self) -> str:
        """The Management API's identifier, which the token is asked for."""
        return f"https://{self.domain}/api/v2/"

    @property
    def rotate_path(self) -> str:
        """The rotate-secret endpoint of the application, URL-quoted."""
        return f"/api/v2/clients/{urllib.parse.quote(self.client_id, safe='')}/rotate-secret"

    @property
    def api(self) -> str:
        """The rotate-secret call, fit to show in a report."""
        return f"POST {self.base_url}{self.rotate_path}"


def config_from_environ(environ: Mapping[str, str]) -> Auth0Management | None:
    """The Management API settings, or None when its credentials are not configured.

    Raises:
        ConfigurationError: a variable is malformed, or ``AUTH0_CLIENT_ID`` is missing while the
            credentials are set (the message names it).
    """

    def get(name: str) -> str:
        return environ.get(name, "").strip()

    domain_text = get("AUTH0_MGMT_DOMAIN") or get("AUTH0_DOMAIN")
    mgmt_id, mgmt_secret = get("AUTH0_MGMT_CLIENT_ID"), get("AUTH0_MGMT_CLIENT_SECRET")
    if not (domain_text and mgmt_id and mgmt_secret):
        return None
    client_id = get("AUTH0_CLIENT_ID")
    if not client_id:
        raise ConfigurationError(
            "AUTH0_MGMT_* credentials are set but AUTH0_CLIENT_ID is not: set it to the client "
            "id of the application whose secret is to be rotated"
        )
    domain = _domain(domain_text)
    return Auth0Management(
        domain=domain,
        base_url=_base_url(get("AUTH0_MGMT_BASE_URL")) or f"https://{domain}",
        mgmt_client_id=mgmt_id,
        mgmt_client_secret=mgmt_secret,
        client_id=client_id,
        timeout_seconds=env_seconds(
            environ, "AUTH0_MGMT_TIMEOUT", DEFAULT_TIMEOUT_SECONDS, exclusive=True
        ),
    )


def _domain(text: str) -> str:
    host = text.removeprefix("https://").removeprefix("http://").rstrip("/")
    if not _HOST.fullmatch(host):
        raise ConfigurationError(
            f"AUTH0_MGMT_DOMAIN/AUTH0_DOMAIN {text[:120]!r} is not a host name; set it to the "
            "tenant's domain, e.g. tenant.eu.auth0.com"
        )
    return host.lower()


def _base_url(text: str) -> str | None:
    """``AUTH0_MGMT_BASE_URL`` checked: https, or http to a loopback address; no credentials."""
    if not text:
        return None
    parts = urllib.parse.urlsplit(text)
    host = parts.hostname or ""
    problem = None
    if "@" in parts.netloc:
        problem = "holds a user name or password; remove them"
    elif parts.scheme not in ("https", "http") or not host or parts.query or parts.fragment:
        problem = "is not an http(s) address without query, e.g. https://tenant.eu.auth0.com"
    elif parts.scheme == "http" and not is_loopback(host):
        problem = "is plain http to a host that is not loopback; use https"
    if problem:
        shown = "" if "@" in parts.netloc else f" {text[:120]!r}"
        raise ConfigurationError(f"AUTH0_MGMT_BASE_URL{shown} {problem}")
    return text.rstrip("/")


def rotate_client_secret(config: Auth0Management) -> Secret:
    """Get a Management API token, rotate the application's client secret, return the new one.

    Raises:
        BackendAuthError: the token was refused, or the token may not rotate (scope).
        BackendUnavailableError: Auth0 cannot be reached, timed out, or is throttling.
        BackendError: any other refusal or an answer without what was asked for.
    """
    token_answer = _post(
        config,
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_id": config.mgmt_client_id,
            "client_secret": config.mgmt_client_secret,
            "audience": config.audience,
        },
        bearer=None,
    )
    token = token_answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise BackendError(
            "Auth0's token endpoint answered without an access token", backend=_BACKEND
        )
    answer = _post(config, config.rotate_path, None, bearer=token)
    new_secret = answer.get("client_secret")
    if not isinstance(new_secret, str) or not new_secret:
        raise BackendError(
            f"Auth0's rotate-secret answer for {config.client_id} holds no client_secret; check "
            "the application in the Auth0 Dashboard",
            backend=_BACKEND,
        )
    register_secret_value(new_secret)  # masked by the redacting log filter from now on
    return Secret(new_secret)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: the credentials and the token go to the tenant and nowhere else."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _post(
    config: Auth0Management, path: str, body: dict[str, str] | None, *, bearer: str | None
) -> dict[str, Any]:
    """POST JSON to ``path`` under the base address; the JSON object answered."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    request = urllib.request.Request(  # noqa: S310 (https, or http to loopback: checked)
        config.base_url + path,
        data=json.dumps(body or {}).encode("utf-8"),
        headers=headers,
        method="POST",
    )
    rotating = bearer is not None
    what = "rotate-secret endpoint" if rotating else "token endpoint"
    try:
        with urllib.request.build_opener(_NoRedirect).open(
            request, timeout=config.timeout_seconds
        ) as response:
            raw = response.read(_MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        error = _refusal(exc, rotating, config)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        error = BackendUnavailableError(
            f"Auth0 at {config.base_url} cannot be reached ({failure_reason(exc)})",
            backend=_BACKEND,
        )
    else:
        return _json_object(raw, what)
    raise error


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw) if len(raw) <= _MAX_ANSWER_BYTES else None
    except ValueError:
        data = None  # the error would quote the answer, which may hold a secret
    if not isinstance(data, dict):
        raise BackendError(
            f"Auth0's {what} answered something that is not a JSON object", backend=_BACKEND
        )
    return data


def _refusal(exc: urllib.error.HTTPError, rotating: bool, config: Auth0Management) -> BackendError:
    """Our error for an HTTP refusal: the status, Auth0's short error code, and what to check."""
    try:
        data = json.loads(exc.read(_MAX_ANSWER_BYTES))
    except (ValueError, OSError):
        data = None
    finally:
        exc.close()
    code = ""
    if isinstance(data, dict):
        found = data.get("errorCode") or data.get("error")
        if isinstance(found, str) and _CODE.fullmatch(found):
            code = f" ({found})"
    what = "rotate-secret endpoint" if rotating else "token endpoint"
    text = f"Auth0's {what} answered {exc.code}{code}"
    if exc.code in (401, 403) and rotating:
        return BackendAuthError(
            f"{text}: the Management API token needs the update:client_keys scope", backend=_BACKEND
        )
    if exc.code in (401, 403):
        return BackendAuthError(
            f"{text}: check AUTH0_MGMT_CLIENT_ID and AUTH0_MGMT_CLIENT_SECRET, and that this "
            "application is authorised for the Auth0 Management API",
            backend=_BACKEND,
        )
    if exc.code == 404 and rotating:
        return BackendError(
            f"{text}: no application {config.client_id} (AUTH0_CLIENT_ID) in {config.domain}",
            backend=_BACKEND,
        )
    if exc.code == 429 or exc.code >= 500:
        return BackendUnavailableError(f"{text}; try again shortly", backend=_BACKEND)
    return BackendError(text, backend=_BACKEND)


def keep_new_secret(
    new_secret: Secret, persist: Callable[[Secret], None], rescue_dir: Path, client_id: str
) -> tuple[bool, str]:
    """Hand the new secret to ``persist``; on failure, save it to a 0600 file in ``rescue_dir``.

    Returns whether ``persist`` took it, and a detail naming the rescue file (never the value).
    """
    try:
        persist(new_secret)
    except BaseException as exc:
        detail = _rescue(new_secret, rescue_dir, client_id, type(exc).__name__)
        if not isinstance(exc, Exception):
            raise  # Ctrl-C: the secret is saved, now stop
        return False, detail
    return (
        True,
        "the new secret was stored; Auth0 may take up to 30 s to accept it everywhere",
    )


def _rescue(new_secret: Secret, rescue_dir: Path, client_id: str, why: str) -> str:
    safe_id = "".join(c if c.isalnum() or c in "-_" else "_" for c in client_id)[:64]
    path = rescue_dir / f"auth0-client-secret-{safe_id}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.rescue"
    try:
        atomic_write_text(path, new_secret.reveal() + "\n", mode=0o600)
    except OSError as exc:
        return (
            f"storing the new secret failed ({why}) and so did saving it to {path} "
            f"({exc.strerror or type(exc).__name__}): it is LOST; rotate again once the store works"
        )
    return (
        f"storing the new secret failed ({why}); it was saved to {path} (mode 0600): store it as "
        "AUTH0_CLIENT_SECRET, then delete that file"
    )
