"""Keeping a Vault/OpenBao token alive: renewal at two thirds of its TTL, and re-login.

A :class:`TokenKeeper` holds the current token. Before each request it checks (one clock read)
whether the token is due for renewal, about two thirds into its TTL as Vault's own lifetime
watcher does; it renews with ``auth/token/renew-self``, and when renewal is no longer possible
(``explicit_max_ttl`` reached, token revoked: 403) it logs in again with the auth method. An
optional daemon thread does the same while the process is idle, so that a periodic token does not
die between two reads. Transient failures of a renewal never fail a read: the current token is
still valid, and the renewal is tried again a little later.

With ``defer_lookup``, a static token is used at once, without the ``lookup-self`` that tells its
TTL: the first reads need not wait for it. :meth:`TokenKeeper.learn_ttl` asks later (after a read
succeeded, or from the background renewer), and renewal is scheduled from its answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from ..errors import BackendAuthError, BackendError, BackendUnavailableError
from .vault_auth import AuthMethod, Login, Send, auth_block, short_reason

__all__ = ["RENEW_FRACTION", "TokenKeeper"]

_log = logging.getLogger("yosai_secrets.backends.vault")

#: Renew when this fraction of the token's TTL has passed (Vault's lifetime watcher: ~2/3).
RENEW_FRACTION: Final = 2.0 / 3.0


class TokenKeeper:
    """Holds the current token, renews it before it expires and logs in again when it must.

    Args:
        method: how the token is obtained.
        clock: a monotonic clock in seconds (inject a fake one in tests).
        retry_seconds: how long to wait before retrying a renewal or login that failed
            transiently.
        defer_lookup: use a static token before learning its TTL (see :meth:`learn_ttl`).
        lookup_delay_seconds: how long the background renewer waits before that look-up.
    """

    def __init__(
        self,
        method: AuthMethod,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_seconds: float = 5.0,
        defer_lookup: bool = False,
        lookup_delay_seconds: float = 0.25,
    ) -> None:
        self.method = method
        self._clock = clock
        self._retry_seconds = retry_seconds
        # Only a static token (StaticTokenAuth) can be used before asking anything about it.
        preset = getattr(method, "token_without_lookup", None)
        self._preset: Callable[[], str] | None = (
            preset if defer_lookup and callable(preset) and not method.can_login else None
        )
        #: The token is in use but its TTL is not known yet (``learn_ttl`` has not succeeded).
        self.ttl_unknown = False
        self._lookup_not_before = 0.0
        self._lookup_delay = lookup_delay_seconds
        self._lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._token: str | None = None
        self._obtained_at = 0.0
        self._expires_at = float("inf")
        self._due_at = float("inf")
        self._renewable = False
        self._warned_final = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: How many logins and renewals happened (for tests and status pages).
        self.logins = 0
        self.renewals = 0

    def __repr__(self) -> str:
        state = "no token" if self._token is None else "token held"
        return f"TokenKeeper({self.method.description!r}, {state}, renewals={self.renewals})"

    @property
    def token(self) -> str | None:
        """The current token, if one was obtained."""
        return self._token

    def seconds_until_due(self) -> float | None:
        """Seconds until the next renewal or login is due (None: never)."""
        if self._token is None:
            return 0.0
        if self._due_at == float("inf"):
            return None
        return max(0.0, self._due_at - self._clock())

    def seconds_until_expiry(self) -> float | None:
        """Seconds the current token has left to live (0: expired).

        None when no token is held yet, when its TTL is not known (a static token not looked up
        yet) or when it never expires (a root token). Read by the metrics
        (``yosai_secrets_vault_token_ttl_seconds``).
        """
        if self._token is None or self.ttl_unknown or self._expires_at == float("inf"):
            return None
        return max(0.0, self._expires_at - self._clock())

    def ensure(self, send: Send) -> str:
        """Return a token fit to send now: obtaining, renewing or replacing it when due.

        Raises:
            BackendError: no token could be obtained (a held, unexpired token is never dropped
                because a renewal failed transiently).
        """
        token = self._token
        if token is not None and self._clock() < self._due_at:
            return token
        with self._lock:
            now = self._clock()
            if self._token is not None and now < self._due_at:
                return self._token
            if self._token is None and self._preset is not None:
                self._adopt(Login(self._preset(), 0.0, False), now)
                self.ttl_unknown = True
            elif self._token is None:
                self._login(send)
            elif self._renewable and now < self._expires_at:
                self._renew(send)
            elif self.method.can_login:
                self._relogin_or_keep(send)
            else:
                self._final_warning()
            return self._held()

    def learn_ttl(self, send: Send, *, wait: bool = False) -> None:
        """Look a deferred static token up, once, and schedule its renewal from the answer.

        Never raises: a failed look-up is retried after ``retry_seconds`` (the token keeps
        working meanwhile). Without ``wait``, returns at once if another thread is at it.
        """
        if not self.ttl_unknown or self._clock() < self._lookup_not_before:
            return
        if not self._lock.acquire(blocking=wait):
            return
        try:
            if not self.ttl_unknown or self._token is None:
                return
            try:
                login = self.method.login(send)
            except BackendError as exc:
                self._lookup_not_before = self._clock() + self._retry_seconds
                _log.warning(
                    "could not look up the Vault token's TTL (%s); trying again later",
                    short_reason(exc),
                )
                return
            self.ttl_unknown = False
            if login.token == self._token:
                self._adopt(login, self._clock())
                _log.debug("the Vault token's ttl is %.0f s", login.ttl_seconds)
        finally:
            self._lock.release()

    def refresh_after_denial(self, send: Send, denied_token: str) -> bool:
        """After a 403, log in again if that can help; return whether the token changed."""
        if not self.method.can_login:
            return False
        with self._lock:
            if self._token != denied_token:
                return True  # another thread already replaced it
            self._login(send)
            return True

    def start_background(self, send: Send) -> None:
        """Renew from a daemon thread too, so that an idle process keeps a live token."""
        with self._thread_lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, args=(send,), name="yosai-secrets-vault-renewer", daemon=True
            )
            self._thread.start()

    def stop(self, timeout_seconds: float = 5.0) -> None:
        """Stop the background renewer, if any, waiting up to ``timeout_seconds`` for it to end."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_seconds)

    def after_fork_in_child(self) -> None:
        """In a forked child: fresh locks and no renewer (the parent's thread is not here).

        The token is kept (it is valid, and Vault tokens may be used by many processes); the
        child starts its own renewer after its first read, when its backend asks for one.
        """
        self._lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    # -- internals ---------------------------------------------------------------------------

    def _run(self, send: Send) -> None:
        # The renewer starts after the first read, usually amid a burst of start-up reads: let
        # them have the connections first (a token lives far longer than this).
        if self.ttl_unknown and self._stop.wait(self._lookup_delay):
            return
        while not self._stop.is_set():
            try:
                if not self._round(send):
                    return
            except BackendError as exc:
                _log.warning("background Vault token renewal failed: %s", exc)
                self._stop.wait(self._retry_seconds)
            except Exception as exc:
                # The renewer must outlive any surprise. Log only the type: a foreign message
                # could carry a request's details.
                _log.warning("background Vault token renewal failed: %s", type(exc).__name__)
                self._stop.wait(self._retry_seconds)

    def _round(self, send: Send) -> bool:
        """One round of the renewer: learn the TTL, or wait until due and renew; False: stop."""
        if self.ttl_unknown:
            self.learn_ttl(send, wait=True)
            if self.ttl_unknown:
                return not self._stop.wait(self._retry_seconds)
            return True
        wait = self.seconds_until_due()
        if wait is None:
            if not self.method.can_login:
                return False  # a static token that will never need renewing again
            wait = 60.0  # nothing due now; a later login may change that
        if self._stop.wait(min(wait, 3600.0)):
            return False
        self.ensure(send)
        return True

    def _adopt(self, login: Login, now: float) -> None:
        self._token = login.token
        self._obtained_at = now
        self._renewable = login.renewable
        if login.ttl_seconds > 0:
            self._expires_at = now + login.ttl_seconds
            self._due_at = now + login.ttl_seconds * RENEW_FRACTION
        else:
            self._expires_at = self._due_at = float("inf")

    def _login(self, send: Send) -> None:
        login = self.method.login(send)
        self.logins += 1
        self._warned_final = False
        self._adopt(login, self._clock())
        _log.debug(
            "obtained a Vault token by %s (ttl %.0f s)", self.method.description, login.ttl_seconds
        )

    def _held(self) -> str:
        """The token held (every path above leaves one, or raised)."""
        if self._token is None:
            raise BackendAuthError("no Vault token is held; log in again", backend="vault")
        return self._token

    def _renew(self, send: Send) -> None:
        token = self._held()
        previous_ttl = self._expires_at - self._obtained_at
        try:
            response = send("POST", "auth/token/renew-self", {}, token)
        except BackendUnavailableError as exc:
            self._later(f"renewal failed ({short_reason(exc)})")
            return
        except BackendError:
            # 403/400: the token can no longer be renewed (expired, revoked, max TTL).
            self._renewable = False
            if self.method.can_login:
                self._relogin_or_keep(send)
            else:
                self._final_warning()
            return
        login = auth_block(response, "token renewal")
        self.renewals += 1
        now = self._clock()
        self._adopt(Login(token, login.ttl_seconds, login.renewable), now)
        # A renewal that could not restore the full TTL hit the token's max TTL: from here on
        # only a new login (or a new static token) helps.
        if login.ttl_seconds < previous_ttl * 0.9 or not login.renewable:
            self._renewable = False
        _log.debug("renewed the Vault token (ttl %.0f s)", login.ttl_seconds)

    def _relogin_or_keep(self, send: Send) -> None:
        try:
            self._login(send)
        except BackendError as exc:
            # The token in hand is still good until it expires: keep serving with it.
            if self._token is None or self._clock() >= self._expires_at:
                raise
            self._later(f"login failed ({short_reason(exc)})")

    def _later(self, what: str) -> None:
        now = self._clock()
        remaining = self._expires_at - now
        self._due_at = now + min(self._retry_seconds, max(remaining / 2, 0.1))
        _log.warning("Vault token %s; keeping the current token and trying again", what)

    def _final_warning(self) -> None:
        # Nothing more to do for this token; never check again until it is replaced.
        self._due_at = float("inf")
        if not self._warned_final and self._expires_at != float("inf"):
            self._warned_final = True
            _log.warning(
                "%s cannot be renewed any further and expires in %.0f s; provide a new token "
                "or use AppRole/Kubernetes auth, which log in again by themselves",
                self.method.description,
                max(0.0, self._expires_at - self._clock()),
            )
