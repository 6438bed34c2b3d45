"""The Vault/OpenBao transport: one hvac client per address, timeouts, retries, failover.

Every request goes to the address that answered last; on a connection error, a timeout, a 5xx
(sealed, standby without a leader), 412 (a standby not yet caught up) or 429 (rate limit, or a
standby asking to come back later) it moves on to the next address of ``VAULT_ADDR`` at once, and
after a full round without an answer it waits (exponential backoff with jitter, at least the
server's ``Retry-After``) before the next round, for at most ``1 + max_retries`` rounds.
A TLS failure is not retried: a certificate does not fix itself.

A GET through a client the backend made itself (no proxy, a plain path) skips the request
building of ``requests`` and hvac, which costs more CPU than the exchange itself: it goes straight
to the keep-alive connection pool of that client's session (its ``HTTPAdapter``), with the same
timeout, TLS settings and headers. Logins, renewals, injected clients and proxied addresses take
hvac's ordinary path.

Other answers (403, 404, 400) are returned to the caller as :class:`VaultStatusError`, which the
backend turns into a precise error naming the path. No message carries a token or a value: the
server's error strings are scrubbed of the current token, and a chained ``requests`` exception is
stripped of its request (which holds the token header) before it becomes a ``__cause__``.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from ..errors import BackendError, BackendTLSError, BackendUnavailableError

__all__ = ["RETRYABLE_STATUSES", "VaultStatusError", "VaultTransport"]

_log = logging.getLogger("yosai_secrets.backends.vault")

#: Answers that another address, or the same one a moment later, may not give.
RETRYABLE_STATUSES: Final = frozenset({412, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_SECONDS: Final = 10.0
_MIN_RATE_LIMIT_WAIT_SECONDS: Final = 0.5
# Paths sent as they are on the direct path; anything else (spaces, %, //) goes through hvac and
# requests, which quote and normalise it.
_PLAIN_PATH: Final = re.compile(r"[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*")


class VaultStatusError(BackendError):
    """The server answered a request with a non-retryable error status (403, 404, 400...).

    The backend translates it into a precise error before it reaches a user.

    Attributes:
        status: the HTTP status.
        addr: the address that answered.
        errors: the server's error strings (scrubbed of tokens).
        body: the JSON body, if any (404 on a deleted KV v2 version carries metadata).
    """

    def __init__(
        self, status: int, *, addr: str, path: str, errors: Sequence[str], body: dict[str, Any]
    ) -> None:
        self.status = status
        self.addr = addr
        self.errors = tuple(errors)
        self.body = body
        detail = "; ".join(self.errors) or "no detail"
        super().__init__(
            f"vault at {addr} answered {status} for {path}: {detail}", backend="vault", path=path
        )


def _scrub(text: str, secrets: Sequence[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    # Server messages can be long multi-line lists ("1 error occurred:\n\t* ..."); one line.
    return " ".join(text.split())[:300]


def _retry_after(response: Any) -> float:
    raw = response.headers.get("Retry-After", "") if response is not None else ""
    try:
        return min(max(float(raw), 0.0), _MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        return 0.0


def _strip(exc: BaseException) -> BaseException:
    # A requests exception holds the PreparedRequest, whose headers carry X-Vault-Token.
    for attr in ("request", "response"):
        if hasattr(exc, attr):
            setattr(exc, attr, None)
    return exc


class VaultTransport:
    """Sends API requests to the first address that answers, with bounded retries.

    Args:
        clients: one ready-made ``hvac.Client`` per address, in ``VAULT_ADDR`` order.
        max_retries: extra rounds over all addresses after the first (``VAULT_MAX_RETRIES``).
        backoff_seconds: the wait before the second round; it doubles each round.
        max_backoff_seconds: the longest wait between two rounds.
        sleep: the function that waits (inject a fake one in tests).
        rng: a source of floats in [0, 1) for the jitter.
        direct: the indexes of the clients whose GETs may go straight to their session's
            connection pool (clients the backend built, with no proxy).
        timeout_seconds: the timeout of a direct GET (the clients' own timeout).
    """

    def __init__(
        self,
        clients: Sequence[Any],
        *,
        max_retries: int = 2,
        backoff_seconds: float = 0.1,
        max_backoff_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        direct: frozenset[int] = frozenset(),
        timeout_seconds: float = 5.0,
    ) -> None:
        if not clients:
            raise ValueError("VaultTransport needs at least one client")
        self.clients = list(clients)
        self.addresses = [str(c.url).rstrip("/") for c in self.clients]
        self._direct = direct
        self._pools: list[Any] = [None] * len(self.clients)
        self._timeout: Any = None
        self._timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._sleep = sleep
        self._rng = rng
        self._preferred = 0
        #: Requests that had to go to another address or wait for another round.
        self.failovers = 0
        self.retries = 0

    @property
    def addr(self) -> str:
        """The address requests go to first (the one that answered last)."""
        return self.addresses[self._preferred]

    def send(
        self, method: str, path: str, body: dict[str, Any] | None, token: str | None
    ) -> dict[str, Any]:
        """Send one request; return the JSON body of a 2xx answer (``{}`` when empty).

        Raises:
            VaultStatusError: a non-retryable error status.
            BackendTLSError: the certificate could not be verified.
            BackendUnavailableError: no address answered within the retries.
        """
        url = "v1/" + path
        problems: dict[str, str] = {}
        last_exc: BaseException | None = None
        rounds = 1 + max(self.max_retries, 0)
        count = len(self.clients)
        for round_no in range(rounds):
            wait_at_least = 0.0
            start = self._preferred
            for offset in range(count):
                index = (start + offset) % count
                addr = self.addresses[index]
                try:
                    answer = self._attempt(index, method, url, body, token)
                except _Unreachable as failure:
                    problems[addr] = failure.kind
                    last_exc = failure.cause
                    continue
                except _TLSFailure as failure:
                    raise BackendTLSError(
                        f"the TLS certificate of vault at {addr} could not be verified "
                        f"({_ssl_reason(failure.cause)}); set VAULT_CACERT to the CA bundle that "
                        "signed it (VAULT_SKIP_VERIFY=true turns verification off: development "
                        "only)",
                        backend="vault",
                        path=path,
                    ) from failure.cause
                if isinstance(answer, dict):
                    self._prefer(index, start)
                    return answer
                status = int(answer.status_code)
                if 200 <= status < 300:
                    self._prefer(index, start)
                    return _json(answer)
                if status in RETRYABLE_STATUSES:
                    problems[addr] = _describe_status(status, answer, token)
                    hinted = _retry_after(answer)
                    if status == 429:
                        # Vault rounds Retry-After down to whole seconds ("0" for "under one").
                        hinted = max(hinted, _MIN_RATE_LIMIT_WAIT_SECONDS)
                    wait_at_least = max(wait_at_least, hinted)
                    last_exc = VaultStatusError(status, addr=addr, path=path, errors=(), body={})
                    continue
                self._prefer(index, start)
                parsed = _json(answer)
                raw_errors = parsed.get("errors") or []
                errors = [_scrub(str(e), (token,)) for e in raw_errors if str(e).strip()]
                raise VaultStatusError(status, addr=addr, path=path, errors=errors, body=parsed)
            if round_no + 1 < rounds:
                self.retries += 1
                delay = min(self.max_backoff_seconds, self.backoff_seconds * (2**round_no))
                # "Equal jitter": half fixed, half random, so that many clients spread out.
                delay = delay / 2 + self._rng() * delay / 2
                self._sleep(max(delay, wait_at_least))
        where = "; ".join(f"{a}: {p}" for a, p in problems.items())
        raise BackendUnavailableError(
            f"vault is unavailable for {path} after {rounds} round(s) over "
            f"{count} address(es) ({where}); check VAULT_ADDR and that the server is running "
            "and unsealed",
            backend="vault",
            path=path,
        ) from last_exc

    def _attempt(
        self, index: int, method: str, url: str, body: dict[str, Any] | None, token: str | None
    ) -> Any:
        """One request to one address: a JSON dict, or a response with ``status_code``.

        Raises:
            _Unreachable: no answer (connection failed, timed out).
            _TLSFailure: the certificate could not be verified.
        """
        client = self.clients[index]
        if body is None and index in self._direct and _PLAIN_PATH.fullmatch(url):
            return self._direct_request(index, method, url, token)
        import requests

        adapter = client.adapter
        if token is not None and adapter.token != token:
            adapter.token = token
        try:
            if body is None:
                return adapter.request(method, url, raise_exception=False)
            return adapter.request(method, url, json=body, raise_exception=False)
        except requests.exceptions.SSLError as exc:
            raise _TLSFailure(_strip(exc)) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            timed_out = isinstance(exc, requests.exceptions.Timeout)
            raise _Unreachable(
                "timed out" if timed_out else "connection failed", _strip(exc)
            ) from None

    def _direct_request(self, index: int, method: str, url: str, token: str | None) -> Any:
        """Send a bodiless request straight to the client's session's connection pool."""
        import urllib3

        headers = self._headers(index, token)
        if self._timeout is None:
            self._timeout = urllib3.Timeout(
                connect=self._timeout_seconds, read=self._timeout_seconds
            )
        for _attempt in range(2):
            pool = self._pools[index] or self._pool_for(index)
            try:
                response = pool.urlopen(
                    method,
                    "/" + url,
                    headers=headers,
                    retries=False,
                    redirect=False,
                    timeout=self._timeout,
                    preload_content=True,
                )
            except urllib3.exceptions.ClosedPoolError:
                self._pools[index] = None  # the session was closed (or its pools recycled)
                continue
            except urllib3.exceptions.SSLError as exc:
                raise _TLSFailure(exc) from None
            except urllib3.exceptions.NewConnectionError as exc:
                raise _Unreachable("connection failed", exc) from None
            except urllib3.exceptions.TimeoutError as exc:
                raise _Unreachable("timed out", exc) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise _Unreachable("connection failed", exc) from None
            return _DirectAnswer(response.status, response.headers, response.data)
        raise _Unreachable("connection failed", None)

    def _headers(self, index: int, token: str | None) -> dict[str, str]:
        headers = {"X-Vault-Request": "true"}
        if token:
            headers["X-Vault-Token"] = token
        namespace = self.clients[index].adapter.namespace
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        return headers

    def direct_target(self, token: str | None) -> tuple[Any, dict[str, str]] | None:
        """The preferred address's urllib3 pool and GET headers, if its GETs may go direct.

        None when that address is proxied or was given as a ready-made client: such reads take
        the ordinary :meth:`send`. The pool carries the session's TLS settings.
        """
        index = self._preferred
        if index not in self._direct:
            return None
        return self._pools[index] or self._pool_for(index), self._headers(index, token)

    @staticmethod
    def is_plain(path: str) -> bool:
        """Whether ``path`` may be sent as written (no quoting or normalising needed)."""
        return _PLAIN_PATH.fullmatch("v1/" + path) is not None

    def _pool_for(self, index: int) -> Any:
        """The urllib3 pool the client's session would use for its address (TLS settings too)."""
        import requests

        adapter = self.clients[index].adapter
        prepared = requests.Request("GET", self.addresses[index] + "/v1/").prepare()
        transport = adapter.session.get_adapter(prepared.url)
        pool = transport.get_connection_with_tls_context(
            prepared, adapter._kwargs.get("verify", True), None, adapter._kwargs.get("cert")
        )
        self._pools[index] = pool
        return pool

    def close(self) -> None:
        """Close every client's HTTP session."""
        for client in self.clients:
            client.adapter.close()

    def _prefer(self, index: int, start: int) -> None:
        if index != start:
            self.failovers += 1
            _log.info(
                "vault at %s did not answer; now using %s",
                self.addresses[start],
                self.addresses[index],
            )
            self._preferred = index


class _Unreachable(Exception):
    """An address gave no answer: ``kind`` says how; ``cause`` holds no request or token."""

    def __init__(self, kind: str, cause: BaseException | None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.cause = cause


class _TLSFailure(Exception):
    """The certificate of an address could not be verified."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__("TLS")
        self.cause = cause


class _DirectAnswer:
    """A direct GET's answer, shaped like the ``requests`` response the rest expects."""

    __slots__ = ("_body", "headers", "status_code")

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status_code = status
        self.headers = headers
        self._body = body

    def json(self) -> Any:
        """The body parsed as JSON (ValueError when it is not)."""
        if not self._body:
            raise ValueError("empty body")
        return json.loads(self._body)


def _json(response: Any) -> dict[str, Any]:
    try:
        parsed = response.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _describe_status(status: int, response: Any, token: str | None) -> str:
    errors = _json(response).get("errors") or []
    detail = _scrub("; ".join(str(e) for e in errors), (token,))
    meaning = {
        412: "standby not caught up",
        429: "rate limited or standby busy",
        500: "server error",
        502: "bad gateway",
        503: "sealed, standby or unavailable",
        504: "gateway timeout",
    }.get(status, "error")
    return f"{status} {meaning}" + (f" ({detail})" if detail else "")


def _ssl_reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "hostname mismatch"):
        if marker.lower() in text.lower():
            tail = text[text.lower().index(marker.lower()) :]
            return _scrub(tail.split("'")[0].split(")")[0], ())
    return "TLS handshake failed"
