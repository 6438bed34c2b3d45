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
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from .. import forksafe
from ..errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionError,
    ConfigurationError,
    InvalidReferenceError,
    MissingDependencyError,
    SecretNotFoundError,
)
from ..references import check_name
from .base import Fetched, Location
from .vault_auth import AuthMethod, StaticTokenAuth
from .vault_endpoints import Endpoint, HvacEndpoint, PoolEndpoint
from .vault_http import VaultStatusError, VaultTransport
from .vault_mounts import KV2, MountTable, looks_kv2
from .vault_settings import VaultSettings
from .vault_token import TokenKeeper

__all__ = ["VaultBackend", "VaultSettings"]

_log = logging.getLogger("yosai_secrets.backends.vault")

#: Connections kept per address: SecretManager.get_many reads up to 16 paths at once.
POOL_SIZE: Final = 16
#: Threads of one fetch_many: on 2 cores more only adds GIL hand-offs; latency is what overlaps.
BATCH_THREADS: Final = 8


def _require_urllib3() -> None:
    try:
        import urllib3  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "urllib3", "vault", "the Vault backend (SECRET_BACKEND=vault, vault: references)"
        ) from None


def endpoints_for(settings: VaultSettings, clock: Callable[[], float]) -> list[Endpoint]:
    """One pooled endpoint per address of ``settings``, with its TLS settings and proxy."""
    return [
        PoolEndpoint(
            addr,
            pool_size=POOL_SIZE,
            ca_cert=settings.ca_cert,
            ca_path=settings.ca_path,
            client_cert=settings.client_cert,
            client_key=settings.client_key,
            skip_verify=settings.skip_verify,
            proxy=settings.proxy_for(index),
            clock=clock,
        )
        for index, addr in enumerate(settings.addresses)
    ]


class VaultBackend:
    """Secrets from HashiCorp Vault or OpenBao.

    Args:
        client: a ready-made ``hvac.Client`` to use (its URL becomes the first address, reached
            through the client itself; with no other auth method, its token is used).
        settings: addresses, TLS, timeouts, retries, paths and auth, usually from
            :meth:`from_environ`.
        auth: how to obtain a token (overrides ``settings.auth``).
        clock: a monotonic clock in seconds, for token renewal and deadlines.
        sleep: the function that waits between retry rounds.
        renew_in_background: also renew the token from a daemon thread while idle.

    Raises:
        MissingDependencyError: urllib3 is not installed.
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
        _require_urllib3()
        if settings is None:
            if client is None:
                raise ConfigurationError(
                    "VaultBackend needs a client or settings; use VaultBackend.from_environ()"
                )
            settings = VaultSettings(
                addresses=(str(client.url).rstrip("/"),),
                namespace=getattr(client.adapter, "namespace", None) or None,
            )
        endpoints: list[Endpoint] = [] if client is None else [HvacEndpoint(client)]
        known = {e.addr for e in endpoints}
        endpoints += [e for e in endpoints_for(settings, clock) if e.addr not in known]
        method = auth or settings.auth or _client_token(client)
        if settings.skip_verify:
            _log.warning(
                "VAULT_SKIP_VERIFY is set: the TLS certificates of %s are not verified; "
                "use this only in development",
                ", ".join(settings.addresses),
            )
            _silence_insecure_warnings()
        self.settings = settings
        self.transport = VaultTransport(
            endpoints,
            namespace=settings.namespace,
            timeout_seconds=settings.timeout_seconds,
            max_retries=settings.max_retries,
            sleep=sleep,
            clock=clock,
        )
        self.keeper = TokenKeeper(method, clock=clock, defer_lookup=True)
        self._background_wanted = renew_in_background
        self._renew_in_background = renew_in_background
        self.mounts = MountTable(self._ask_mount)
        #: Paths a fetch_many could not read (each error is that path's result too).
        self.batch_failures = 0
        forksafe.register(self)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> VaultBackend:
        """Build the backend from ``VAULT_*`` variables (see docs/vault.md).

        Raises:
            ConfigurationError: a variable is missing or malformed; the message names it.
        """
        _require_urllib3()
        return cls(settings=VaultSettings.from_environ(environ), renew_in_background=True)

    def __repr__(self) -> str:
        return (
            f"VaultBackend(addresses={list(self.transport.addresses)!r}, "
            f"auth={self.keeper.method.description!r})"
        )

    def after_fork_in_child(self) -> None:
        """In a forked child: new connections, a new renewer and new locks; the token is kept."""
        self.transport.reset()
        self.keeper.after_fork_in_child()
        self._renew_in_background = self._background_wanted
        self.mounts.after_fork_in_child()

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
        _check_segments(key, path)
        if "/" not in path:
            if sep:
                raise InvalidReferenceError(
                    f"vault key {key!r}: a bare name reads the field of that name at "
                    f"VAULT_SECRETS_PATH ({self.settings.secrets_path}); to pick a field of "
                    "another path, write the path: secret/data/app#field"
                )
            return Location(self.mounts.canonical_path(self.settings.secrets_path), path)
        return Location(self.mounts.canonical_path(path), field.strip() or None)

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
        """Read several paths concurrently: each path's fields, or the error it met.

        Each path is one :meth:`fetch` (with its retries, failover and precise errors) on a small
        thread pool, so the round trips overlap. A failed path is counted in
        ``batch_failures`` and logged at DEBUG (by name, never a value); its error is its result.
        """
        wanted = list(dict.fromkeys(paths))
        if len(wanted) <= 1:
            return {path: self._fetch_or_error(path) for path in wanted}
        try:
            self.keeper.ensure(self._send)  # one login for all, before the threads start
        except ConfigurationError as exc:
            self.batch_failures += len(wanted)
            return dict.fromkeys(wanted, exc)
        with ThreadPoolExecutor(
            max_workers=min(BATCH_THREADS, len(wanted)), thread_name_prefix="yosai-secrets-vault"
        ) as pool:
            outcomes = list(pool.map(self._fetch_or_error, wanted))
        return dict(zip(wanted, outcomes, strict=True))

    def _fetch_or_error(self, path: str) -> Fetched | Exception:
        try:
            return self.fetch(path)
        except ConfigurationError as exc:
            self.batch_failures += 1
            _log.debug("vault batch read of %s failed: %s", path, type(exc).__name__)
            return exc

    def _fields(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The fields in a read's JSON answer: KV v2's ``data.data``, or KV v1's ``data``."""
        data = body.get("data")
        version = self.mounts.kv_version(path)
        if version == KV2 or (version is None and looks_kv2(data)):
            inner = data.get("data") if isinstance(data, dict) else None
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
            "via_agent": self.settings.via_agent,  # VAULT_AGENT_ADDR: a node-local proxy
        }

    # -- internals ------------------------------------------------------------------------------

    def _ask_mount(self, path: str) -> dict[str, Any]:
        """The server's answer about the mount holding ``path`` (for the mount table)."""
        return self._request("GET", f"sys/internal/ui/mounts/{path}")

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None, token: str | None
    ) -> dict[str, Any]:
        return self.transport.send(method, path, body, token)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one authenticated API request and return its JSON answer.

        For what reading does not cover (rotation's KV writes, metadata, destroys, status), so
        that every face talks to Vault through this backend's addresses, TLS, auth and retries.

        Raises:
            VaultStatusError: the server refused the request (403, 404, 400...).
            BackendError: unreachable, TLS, or no token could be obtained (a subclass).
        """
        _check_segments(path, path.partition("?")[0])
        return self._request(method, path, body)

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send an authenticated request; after a 403, log in again once if that can help.

        A login is attempted only when the token itself no longer works (a plain "permission
        denied" for a path would otherwise cost a login, and a secret id use, per read).
        """
        keeper = self.keeper
        token = keeper.ensure(self._send)
        try:
            answer = self.transport.send(method, path, body, token)
        except VaultStatusError as exc:
            if (
                exc.status != 403
                or not self.keeper.method.can_login
                or self._token_works()
                or not self.keeper.refresh_after_denial(self._send, token)
            ):
                raise
            answer = self.transport.send(method, path, body, keeper.ensure(self._send))
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
        mount = self.mounts.known_mount(path) or self.mounts.look_up(path)
        if mount and self.mounts.version_of(mount) == KV2:
            name = path[len(mount) :].removeprefix("data/")
            return (
                f"write it with: bao kv put -mount={mount.rstrip('/')} {name} <field>=<value> "
                "(or vault kv put)"
            )
        if mount is None and "/data/" not in f"/{path}":
            return "if its mount is KV v2, the raw API path has data/ after the mount name"
        return ""


def _client_token(client: Any | None) -> AuthMethod:
    """The static token of a ready-made client, when no other auth method is configured."""
    token = getattr(client, "token", None) if client is not None else None
    if not token:
        raise BackendAuthError(
            "no way to authenticate to Vault: set VAULT_TOKEN, AppRole "
            "(VAULT_ROLE_ID and VAULT_SECRET_ID) or Kubernetes auth (VAULT_K8S_ROLE)",
            backend="vault",
        )
    return StaticTokenAuth(str(token), source="the given hvac client")


def _silence_insecure_warnings() -> None:
    """urllib3 warns on every unverified request; the operator asked for it and was told once."""
    import warnings

    import urllib3

    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)


def _check_segments(key: str, path: str) -> None:
    """Refuse a path Vault would resolve elsewhere (``..``, encoded or not) or cannot take."""
    check_name("vault", path, key)
