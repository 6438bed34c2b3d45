"""HashiCorp Vault / OpenBao: KV v1 and v2, AppRole and Kubernetes auth, renewal, failover.

Keys are raw API paths with a field, as the operator guide writes them::

    secret/data/db#password   KV v2 (mount secret/)       -> reads GET /v1/secret/data/db
    kv/db#password            KV v1 (mount kv/)           -> reads GET /v1/kv/db
    secret/db#password        KV v2, logical form         -> the same read as secret/data/db
    DB_PASSWORD               a bare name: that field at VAULT_SECRETS_PATH (secret/data/yosai)

``locate`` returns the raw API path, so both spellings of one secret share one cache entry. A
raw KV v2 path (``<mount>/data/...``) is read as written, with no question first: the answer's
shape (``data.data`` beside ``data.metadata``) tells KV v2 from v1. Any other path may be the
logical KV v2 form, so its mount's KV version is asked once (``sys/internal/ui/mounts``) and
remembered. A static token is used at once; its TTL is looked up after the first read (by the
background renewer when there is one), never before it. ``fetch`` returns the secret's fields
(KV v2: ``data.data``); the manager picks the field, so several fields of one path cost one
read. Transport, retries and failover live in :mod:`.vault_http`; auth methods
in :mod:`.vault_auth`; token renewal in :mod:`.vault_token`; the variables in
:mod:`.vault_settings`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from ..errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionError,
    BackendUnavailableError,
    ConfigurationError,
    InvalidReferenceError,
    MissingDependencyError,
    SecretNotFoundError,
)
from .base import Fetched, Location
from .vault_auth import AuthMethod, StaticTokenAuth
from .vault_batch import pipelined_get
from .vault_http import VaultStatusError, VaultTransport
from .vault_settings import VaultSettings
from .vault_token import TokenKeeper

__all__ = ["VaultBackend", "VaultSettings"]

_log = logging.getLogger("yosai_secrets.backends.vault")

#: Connections kept per address: SecretManager.get_many reads up to 16 paths at once.
POOL_SIZE: Final = 16

_PROXY_VARIABLES: Final = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)

# Mount version markers: KV v1, KV v2, or not a KV engine / not known.
_KV1, _KV2, _OTHER = 1, 2, 0


def _import_hvac() -> Any:
    try:
        import hvac
    except ImportError:
        raise MissingDependencyError(
            "hvac", "vault", "the Vault backend (SECRET_BACKEND=vault, vault: references)"
        ) from None
    return hvac


class VaultBackend:
    """Secrets from HashiCorp Vault or OpenBao.

    Args:
        client: a ready-made ``hvac.Client`` to use (its URL becomes the first address and, with
            no other auth method, its token is used as a static token).
        settings: addresses, TLS, timeouts, retries, paths and auth, usually from
            :meth:`from_environ`.
        auth: how to obtain a token (overrides ``settings.auth``).
        clock: a monotonic clock in seconds, for token renewal (inject a fake one in tests).
        sleep: the function that waits between retry rounds.
        renew_in_background: also renew the token from a daemon thread while idle.

    Raises:
        MissingDependencyError: hvac is not installed.
        ConfigurationError: neither a client nor settings say where Vault is or how to log in.
    """

    name = "vault"

    def __init__(
        self,
        client: Any | None = None,
        *,
        settings: VaultSettings | None = None,
        auth: AuthMethod | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        renew_in_background: bool = False,
    ) -> None:
        hvac = _import_hvac()
        if settings is None:
            if client is None:
                raise ConfigurationError(
                    "VaultBackend needs a client or settings; use VaultBackend.from_environ()"
                )
            settings = VaultSettings(addresses=(str(client.url).rstrip("/"),))
        clients: list[Any] = [] if client is None else [client]
        known = {str(client.url).rstrip("/")} if client is not None else set()
        direct: set[int] = set()  # our own clients with no proxy: GETs skip hvac's layers
        for addr in settings.addresses:
            if addr not in known:
                session, verify, proxies = _session_for(addr, settings)
                if not proxies:
                    direct.add(len(clients))
                clients.append(
                    hvac.Client(
                        url=addr,
                        token="",
                        verify=verify,
                        timeout=settings.timeout_seconds,
                        proxies=proxies,
                        namespace=settings.namespace,
                        session=session,
                    )
                )
                known.add(addr)
        method = auth or settings.auth
        if method is None:
            token = getattr(client, "token", None) if client is not None else None
            if not token:
                raise BackendAuthError(
                    "no way to authenticate to Vault: set VAULT_TOKEN, AppRole "
                    "(VAULT_ROLE_ID and VAULT_SECRET_ID) or Kubernetes auth (VAULT_K8S_ROLE)",
                    backend="vault",
                )
            method = StaticTokenAuth(str(token), source="the given hvac client")
        if settings.skip_verify:
            _log.warning(
                "VAULT_SKIP_VERIFY is set: the TLS certificates of %s are not verified; "
                "use this only in development",
                ", ".join(settings.addresses),
            )
        self.settings = settings
        self.transport = VaultTransport(
            clients,
            max_retries=settings.max_retries,
            sleep=sleep,
            direct=frozenset(direct),
            timeout_seconds=settings.timeout_seconds,
        )
        self.keeper = TokenKeeper(method, clock=clock, defer_lookup=True)
        self._renew_in_background = renew_in_background
        self._mounts: dict[str, int] = {}
        self._canonical: dict[str, str] = {}
        self._mount_lock = threading.Lock()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> VaultBackend:
        """Build the backend from ``VAULT_*`` variables (see docs/vault.md).

        Raises:
            ConfigurationError: a variable is missing or malformed; the message names it.
        """
        _import_hvac()
        return cls(settings=VaultSettings.from_environ(environ), renew_in_background=True)

    def __repr__(self) -> str:
        return (
            f"VaultBackend(addresses={list(self.transport.addresses)!r}, "
            f"auth={self.keeper.method.description!r})"
        )

    # -- the Backend protocol -----------------------------------------------------------------

    def locate(self, key: str) -> Location:
        """Map ``path#field`` or a bare ``NAME`` to the raw API path to read and the field.

        Raises:
            InvalidReferenceError: the key is empty, or a bare name carries a ``#field``.
        """
        raw, sep, field = key.partition("#")
        path = raw.strip().strip("/")
        if path.startswith("v1/"):
            path = path[3:]
        if not path:
            raise InvalidReferenceError(f"vault key {key!r} names no path")
        if "/" not in path:
            if sep:
                raise InvalidReferenceError(
                    f"vault key {key!r}: a bare name reads the field of that name at "
                    f"VAULT_SECRETS_PATH ({self.settings.secrets_path}); to pick a field of "
                    "another path, write the path: secret/data/app#field"
                )
            return Location(self._canonical_path(self.settings.secrets_path), path)
        return Location(self._canonical_path(path), field.strip() or None)

    def fetch(self, path: str) -> Mapping[str, Any]:
        """Read ``path`` and return its fields (KV v2: the current version's data).

        Raises:
            SecretNotFoundError: nothing is stored at ``path`` (or its current version is deleted).
            BackendError: permission denied, bad token, sealed, unreachable, TLS (a subclass).
        """
        try:
            body = self._request("GET", path)
        except VaultStatusError as exc:
            raise self._translate(exc, path) from None
        return self._fields(path, body)

    def fetch_many(self, paths: Sequence[str]) -> dict[str, Fetched | Exception]:
        """Read several paths in about one round trip: each path's fields, or its error.

        Every GET is sent, each on its own keep-alive connection, before any answer is read (see
        :mod:`.vault_batch`); no threads. A path whose answer is anything but a plain 200 (an
        error status, a timeout, no connection) is read again by :meth:`fetch`, whose retries,
        failover and precise errors apply; its error becomes that path's result.
        """
        wanted = list(dict.fromkeys(paths))
        results: dict[str, Fetched | Exception] = {}
        try:
            token = self.keeper.ensure(self._send)
        except ConfigurationError as exc:
            return dict.fromkeys(wanted, exc)
        bodies = pipelined_get(self.transport, wanted, token, self.settings.timeout_seconds)
        if bodies and (self._renew_in_background or self.keeper.ttl_unknown):
            self._after_read()
        for path in wanted:
            try:
                body = bodies.get(path)
                results[path] = self.fetch(path) if body is None else self._fields(path, body)
            except ConfigurationError as exc:
                results[path] = exc
        return results

    def _fields(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The fields in a read's JSON answer: KV v2's ``data.data``, or KV v1's ``data``."""
        data = body.get("data")
        version = self._kv_version(path)
        if version == _KV2 or (version is None and _looks_kv2(data)):
            assert isinstance(data, dict)
            inner = data.get("data")
            if inner is None:
                raise SecretNotFoundError(
                    path,
                    [f"vault {self.transport.addr} {path}"],
                    "its current version is deleted or destroyed; write a new version",
                )
            data = inner
        if not isinstance(data, dict):
            raise BackendError(
                f"vault {self.transport.addr} {path} holds no key/value data; is it a KV path?",
                backend="vault",
                path=path,
            )
        return data

    def describe(self, path: str) -> str:
        """Name the address and path a value is read from, e.g. ``vault https://v:8200 kv/db``."""
        return f"vault {self.transport.addr} {path}"

    # -- extras ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the background renewer and close the HTTP sessions."""
        self.keeper.stop()
        self.transport.close()

    def token_status(self) -> dict[str, Any]:
        """Say how the token is obtained and kept (never the token itself)."""
        return {
            "auth": self.keeper.method.description,
            "logins": self.keeper.logins,
            "renewals": self.keeper.renewals,
            "renew_in_seconds": self.keeper.seconds_until_due(),
            "address": self.transport.addr,
        }

    # -- internals ------------------------------------------------------------------------------

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None, token: str | None
    ) -> dict[str, Any]:
        return self.transport.send(method, path, body, token)

    def _request(self, method: str, path: str) -> dict[str, Any]:
        """Send an authenticated request; after a 403, log in again once if that can help.

        A login is attempted only when the token itself no longer works (a plain "permission
        denied" for a path would otherwise cost a login, and a secret id use, per read).
        """
        keeper = self.keeper
        token = keeper.ensure(self._send)
        try:
            answer = self.transport.send(method, path, None, token)
        except VaultStatusError as exc:
            if (
                exc.status != 403
                or not self.keeper.method.can_login
                or self._token_works()
                or not self.keeper.refresh_after_denial(self._send, token)
            ):
                raise
            answer = self.transport.send(method, path, None, keeper.ensure(self._send))
        if self._renew_in_background or keeper.ttl_unknown:
            self._after_read()
        return answer

    def _after_read(self) -> None:
        """Schedule renewal once a read has worked: never before, so no read waits for it."""
        keeper = self.keeper
        if self._renew_in_background:
            # Only a token that expires (or whose TTL is still unknown) needs a renewer; a
            # forked worker has none, and renews lazily on its next request instead.
            if keeper.ttl_unknown or keeper.seconds_until_due() is not None:
                self._renew_in_background = False
                keeper.start_background(self._send)
        elif keeper.ttl_unknown:
            keeper.learn_ttl(self._send)

    def _translate(self, exc: VaultStatusError, path: str) -> BackendError | SecretNotFoundError:
        addr = exc.addr
        where = f"vault {addr} {path}"
        if exc.status == 404:
            return SecretNotFoundError(path, [where], self._not_found_hint(path))
        if exc.status in (401, 403):
            if self._token_works():
                return BackendPermissionError(
                    f"permission denied reading {path} from vault at {addr}: the token "
                    f"({self.keeper.method.description}) is valid but its policies do not "
                    f'allow it; grant path "{path}" {{ capabilities = ["read"] }}',
                    backend="vault",
                    path=path,
                )
            return BackendAuthError(
                f"vault at {addr} refused {self.keeper.method.description} while reading "
                f"{path}: the token is invalid, expired or revoked; provide a valid one",
                backend="vault",
                path=path,
            )
        detail = "; ".join(exc.errors) or "no detail"
        return BackendError(
            f"vault at {addr} rejected the read of {path} ({exc.status}: {detail})",
            backend="vault",
            path=path,
        )

    def _token_works(self) -> bool:
        token = self.keeper.token
        try:
            self.transport.send("GET", "auth/token/lookup-self", None, token)
        except VaultStatusError:
            return False
        except BackendError:
            return True  # cannot tell; the read itself said "permission denied"
        return True

    def _not_found_hint(self, path: str) -> str:
        # A raw path is read without asking for its mount first; a miss may ask now (an error
        # path: one request to give the right command is worth it).
        mount = self._mount_of_known(path) or self._look_up_mount(path)
        if mount and self._mounts.get(mount) == _KV2:
            name = path[len(mount) :].removeprefix("data/")
            return (
                f"write it with: bao kv put -mount={mount.rstrip('/')} {name} <field>=<value> "
                "(or vault kv put)"
            )
        if mount is None and "/data/" not in f"/{path}":
            return "if its mount is KV v2, the raw API path has data/ after the mount name"
        return ""

    # -- mounts and canonical paths -------------------------------------------------------------

    def _canonical_path(self, path: str) -> str:
        found = self._canonical.get(path)
        if found is not None:
            return found
        mount = self._mount_of_known(path)
        if mount is None:
            if _is_raw_kv2(path):
                return path  # read as written: the answer's shape tells the KV version
            mount = self._look_up_mount(path)
        canonical = path
        if mount is not None and self._mounts.get(mount) == _KV2:
            rest = path[len(mount) :]
            if not rest.startswith(("data/", "metadata/")):
                canonical = f"{mount}data/{rest}"
        if mount is not None:
            if len(self._canonical) > 4096:
                self._canonical.clear()
            self._canonical[path] = canonical
        return canonical

    def _mount_of_known(self, path: str) -> str | None:
        probe = path + "/"
        best = None
        for mount in self._mounts:  # replaced, never mutated: safe to walk without the lock
            if probe.startswith(mount) and (best is None or len(mount) > len(best)):
                best = mount
        return best

    def _look_up_mount(self, path: str) -> str | None:
        """Ask the server which mount holds ``path`` and its KV version; remember it.

        Returns None (and remembers nothing) when the server cannot say now; the path is then
        read as given, and the answer's shape tells KV v2 from v1.
        """
        with self._mount_lock:
            known = self._mount_of_known(path)
            if known is not None:
                return known
            try:
                body = self._request("GET", f"sys/internal/ui/mounts/{path}")
            except VaultStatusError:
                # 403: this token may not see the mount table for the path; read the path as
                # given (and do not ask again for it): the read will tell.
                self._canonical[path] = path
                return None
            except (BackendUnavailableError, BackendAuthError):
                return None
            data = body.get("data") or {}
            mount = str(data.get("path") or path.split("/", 1)[0] + "/")
            kind = data.get("type")
            options = data.get("options") or {}
            version = _OTHER
            if kind in ("kv", "generic"):
                version = _KV2 if str(options.get("version", "1")) == "2" else _KV1
            self._mounts = {**self._mounts, mount: version}
            _log.debug("vault mount %s is %s", mount, {1: "KV v1", 2: "KV v2"}.get(version, kind))
            return mount

    def _kv_version(self, path: str) -> int | None:
        mount = self._mount_of_known(path)
        if mount is None:
            return None
        version = self._mounts[mount]
        if version == _KV2 and not path[len(mount) :].startswith("data/"):
            return _OTHER
        return version if version != _OTHER else None


def _session_for(addr: str, settings: VaultSettings) -> tuple[Any, bool | str, dict[str, str]]:
    """A keep-alive ``requests`` session for one address, with what it needs from the process.

    ``trust_env`` is off: with it on, requests reads the proxy variables, parses ``NO_PROXY`` and
    looks for ``~/.netrc`` on every request, about a third of a read's CPU. What the environment
    says is read here once instead: ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` for this address
    and, when no ``VAULT_CACERT`` is set, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``. The pool keeps
    up to :data:`POOL_SIZE` connections, so that concurrent reads do not queue for one.
    """
    import os

    import requests
    import requests.adapters
    import requests.utils

    session = requests.Session()
    session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    verify: bool | str = settings.verify
    if verify is True:
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    proxies: dict[str, str] = {}
    # requests' own look-up walks the whole environment twice: ask it only if a proxy is set.
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        proxies = dict(requests.utils.get_environ_proxies(addr))
    # hvac prefers the session's verify and proxies to its own arguments when they are set.
    session.verify = verify
    session.proxies = proxies
    return session, verify, proxies


def _is_raw_kv2(path: str) -> bool:
    """``<mount>/data/<name>`` (or ``metadata/``): a KV v2 API path, right as written."""
    parts = path.split("/", 2)
    return len(parts) == 3 and parts[1] in ("data", "metadata") and bool(parts[2])


def _looks_kv2(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and set(data) == {"data", "metadata"}
        and isinstance(data["metadata"], dict)
        and "version" in data["metadata"]
    )
