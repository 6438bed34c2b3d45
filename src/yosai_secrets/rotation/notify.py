"""Tell running processes to drop their cached secrets once new values are current.

Inside Kubernetes the rollout restart does that (new pods start with empty caches). Processes it
does not restart are listed by the operator:

* ``ROTATION_NOTIFY_URLS``: API base addresses, comma-separated. Each gets
  ``POST <url>/api/secrets/invalidate`` with ``Authorization: Bearer <ROTATION_NOTIFY_TOKEN>``
  (the API accepts it when its ``SECRETS_INVALIDATE_TOKEN`` holds the same token). An address
  that already ends in ``/api/secrets/invalidate`` is used as it is.
* ``ROTATION_NOTIFY_PIDFILE``: a file holding a process id, which gets SIGHUP (the API clears
  every cache on it; gunicorn's master replaces its workers).

Every HTTP call has a timeout and follows no redirect (the token must not travel to another
address). An address holding ``user:password@`` is not called (the bearer token is what
authenticates; credentials there would be sent nowhere and shown nowhere). A result names its
target without credentials and never holds the token.
"""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from ..netinfo import failure_reason
from ..secret import url_without_credentials

__all__ = [
    "INVALIDATE_PATH",
    "NOTIFY_PIDFILE_VARIABLE",
    "NOTIFY_TOKEN_VARIABLE",
    "NOTIFY_URLS_VARIABLE",
    "Notified",
    "notify_all",
    "notify_targets",
]

NOTIFY_URLS_VARIABLE: Final = "ROTATION_NOTIFY_URLS"
NOTIFY_TOKEN_VARIABLE: Final = "ROTATION_NOTIFY_TOKEN"  # noqa: S105 (a variable's name)
NOTIFY_PIDFILE_VARIABLE: Final = "ROTATION_NOTIFY_PIDFILE"
INVALIDATE_PATH: Final = "/api/secrets/invalidate"
_TIMEOUT_SECONDS: Final = 5.0
_MAX_PIDFILE_BYTES: Final = 64


@dataclass(frozen=True)
class Notified:
    """One process told (or not) to drop its caches: ``target`` is fit to show."""

    target: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        """A JSON-able dict."""
        return asdict(self)


def notify_targets(environ: Mapping[str, str]) -> list[str]:
    """What would be told, shown without credentials (URLs, then ``pid file PATH``)."""
    shown = [url_without_credentials(_endpoint(url)) for url in _urls(environ)]
    pidfile = environ.get(NOTIFY_PIDFILE_VARIABLE, "").strip()
    if pidfile:
        shown.append(f"pid file {pidfile}")
    return shown


def notify_all(
    environ: Mapping[str, str], *, timeout_seconds: float = _TIMEOUT_SECONDS
) -> list[Notified]:
    """Tell every process the operator listed to drop its cached secrets; one result each."""
    results = [_post(url, environ, timeout_seconds) for url in _urls(environ)]
    pidfile = environ.get(NOTIFY_PIDFILE_VARIABLE, "").strip()
    if pidfile:
        results.append(_hangup(Path(pidfile)))
    return results


def _urls(environ: Mapping[str, str]) -> list[str]:
    raw = environ.get(NOTIFY_URLS_VARIABLE, "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def _endpoint(url: str) -> str:
    base = url.rstrip("/")
    return base if base.endswith(INVALIDATE_PATH) else base + INVALIDATE_PATH


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: the bearer token goes to the address the operator gave, nowhere else."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _post(url: str, environ: Mapping[str, str], timeout_seconds: float) -> Notified:
    endpoint = _endpoint(url)
    shown = url_without_credentials(endpoint)
    if not endpoint.startswith(("https://", "http://")):
        return Notified(shown, False, "not an http(s) address")
    if shown != endpoint:
        return Notified(shown, False, "the address holds credentials; give it without them")
    token = environ.get(NOTIFY_TOKEN_VARIABLE, "").strip()
    if not token:
        return Notified(shown, False, f"{NOTIFY_TOKEN_VARIABLE} is not set; nothing was sent")
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        endpoint,
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Length": "0"},
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout_seconds) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return Notified(shown, False, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Notified(shown, False, failure_reason(exc))
    return Notified(shown, 200 <= status < 300, f"HTTP {status}")


def _hangup(pidfile: Path) -> Notified:
    shown = f"pid file {pidfile}"
    try:
        raw = pidfile.read_bytes()[:_MAX_PIDFILE_BYTES].decode("ascii").strip()
        pid = int(raw)
    except OSError as exc:
        return Notified(shown, False, f"cannot read it: {exc.strerror or type(exc).__name__}")
    except (UnicodeDecodeError, ValueError):
        return Notified(shown, False, "it does not hold a process id")
    if pid <= 0:  # 0 and negative ids would signal whole process groups
        return Notified(shown, False, "it does not hold a process id")
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return Notified(shown, False, f"no process {pid}")
    except PermissionError:
        return Notified(shown, False, f"not allowed to signal process {pid}")
    return Notified(shown, True, f"SIGHUP sent to process {pid}")
