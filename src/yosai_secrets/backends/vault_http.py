"""The Vault/OpenBao transport: one connection pool per address, deadlines, retries, failover.

Every request goes to the address that answered last; on a connection error, a timeout, a 5xx
(sealed, standby without a leader), 412 (a standby not yet caught up) or 429 (rate limit, or a
standby asking to come back later) it moves on to the next address of ``VAULT_ADDR`` at once, and
after a full round without an answer it waits (exponential backoff with jitter, at least the
server's ``Retry-After``) before the next round, for at most ``1 + max_retries`` rounds.
A TLS failure is not retried: a certificate does not fix itself.

Each address is an :class:`Endpoint`. The backend's own are :class:`PoolEndpoint`: a urllib3
``PoolManager`` (or ``ProxyManager``) with the TLS settings of ``VAULT_CACERT``, ``VAULT_CAPATH``,
``VAULT_CLIENT_CERT``/``VAULT_CLIENT_KEY`` and ``VAULT_SKIP_VERIFY``, used through urllib3's public
API only. An ``hvac.Client`` handed in ready-made is an :class:`HvacEndpoint` and goes through
hvac's public adapter. Each attempt has a deadline for the whole answer (``VAULT_TIMEOUT``), not
only per socket read: a server that sends its body a byte at a time is cut off.

Other answers (403, 404, 400) are returned to the caller as :class:`VaultStatusError`, which the
backend turns into a precise error naming the path. No message carries a token or a value: the
server's error strings are scrubbed of the current token, and no exception that holds a request
(whose headers carry the token) is kept as a cause.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, Protocol

from ..errors import BackendError, BackendTLSError, BackendUnavailableError

__all__ = [
    "RETRYABLE_STATUSES",
    "Answer",
    "Endpoint",
    "HvacEndpoint",
    "PoolEndpoint",
    "TLSFailure",
    "Unreachable",
    "VaultStatusError",
    "VaultTransport",
]

_log = logging.getLogger("yosai_secrets.backends.vault")

#: Answers that another address, or the same one a moment later, may not give.
RETRYABLE_STATUSES: Final = frozenset({412, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_SECONDS: Final = 10.0
_MIN_RATE_LIMIT_WAIT_SECONDS: Final = 0.5
#: The largest answer read (a KV secret is at most about 1 MiB in Vault's default limits).
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
_CHUNK_BYTES: Final = 64 * 1024


class Answer(NamedTuple):
    """One HTTP answer: status, headers and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Unreachable(Exception):
    """An address gave no (complete) answer: ``kind`` says how. Holds no request or token."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class TLSFailure(Exception):
    """The certificate of an address could not be verified; ``reason`` is a short phrase."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Endpoint(Protocol):
    """One Vault address and the way requests reach it."""

    addr: str

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], deadline: float
    ) -> Answer:
        """Send one request to ``/v1/<path>`` and read the whole answer by ``deadline``.

        Raises:
            Unreachable: no connection, or no complete answer by the deadline.
            TLSFailure: the certificate could not be verified.
        """
        ...

    def reset(self) -> None:
        """Forget every connection (after a fork: the parent's are not ours to use)."""
        ...

    def close(self) -> None:
        """Close every connection."""
        ...


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


class VaultTransport:
    """Sends API requests to the first address that answers, with bounded retries.

    Args:
        endpoints: one endpoint per address, in ``VAULT_ADDR`` order.
        namespace: sent as ``X-Vault-Namespace`` (``VAULT_NAMESPACE``).
        timeout_seconds: the deadline of one attempt, for the whole answer.
        max_retries: extra rounds over all addresses after the first (``VAULT_MAX_RETRIES``).
        backoff_seconds: the wait before the second round; it doubles each round.
        max_backoff_seconds: the longest wait between two rounds.
        sleep: the function that waits (inject a fake one in tests).
        rng: a source of floats in [0, 1) for the jitter.
        clock: a monotonic clock in seconds, for deadlines.
    """

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        namespace: str | None = None,
        timeout_seconds: float = 5.0,
        max_retries: int = 2,
        backoff_seconds: float = 0.1,
        max_backoff_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not endpoints:
            raise ValueError("VaultTransport needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.addresses = [e.addr for e in self.endpoints]
        self.namespace = namespace
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
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
        payload = None if body is None else json.dumps(body).encode("utf-8")
        headers = self._headers(token, payload is not None)
        problems: dict[str, str] = {}
        rounds = 1 + max(self.max_retries, 0)
        for round_no in range(rounds):
            answer, wait_at_least = self._round(method, path, payload, headers, token, problems)
            if answer is not None:
                return answer
            if round_no + 1 < rounds:
                self.retries += 1
                delay = min(self.max_backoff_seconds, self.backoff_seconds * (2**round_no))
                # "Equal jitter": half fixed, half random, so that many clients spread out.
                delay = delay / 2 + self._rng() * delay / 2
                self._sleep(max(delay, wait_at_least))
        where = "; ".join(f"{a}: {p}" for a, p in problems.items())
        raise BackendUnavailableError(
            f"vault is unavailable for {path} after {rounds} round(s) over "
            f"{len(self.endpoints)} address(es) ({where}); check VAULT_ADDR and that the server "
            "is running and unsealed",
            backend="vault",
            path=path,
        )

    def reset(self) -> None:
        """Forget every connection (in a forked child); new ones are opened on first use."""
        for endpoint in self.endpoints:
            endpoint.reset()

    def close(self) -> None:
        """Close every connection."""
        for endpoint in self.endpoints:
            endpoint.close()

    # -- internals ------------------------------------------------------------------------------

    def _round(
        self,
        method: str,
        path: str,
        payload: bytes | None,
        headers: dict[str, str],
        token: str | None,
        problems: dict[str, str],
    ) -> tuple[dict[str, Any] | None, float]:
        """Try every address once, the preferred first: (the answer, or None; least wait)."""
        wait_at_least = 0.0
        start = self._preferred
        count = len(self.endpoints)
        for offset in range(count):
            index = (start + offset) % count
            endpoint = self.endpoints[index]
            deadline = self._clock() + self.timeout_seconds
            try:
                answer = endpoint.request(method, path, payload, headers, deadline)
            except Unreachable as failure:
                problems[endpoint.addr] = failure.kind
                continue
            except TLSFailure as failure:
                raise _tls_error(endpoint.addr, path, failure.reason) from None
            if answer.status in RETRYABLE_STATUSES:
                problems[endpoint.addr] = _describe_status(answer, token)
                wait_at_least = max(wait_at_least, _retry_wait(answer))
                continue
            self._prefer(index, start)
            parsed = _json(answer.body)
            if 200 <= answer.status < 300:
                return parsed, 0.0
            errors = [
                _scrub(str(e), (token,)) for e in parsed.get("errors") or [] if str(e).strip()
            ]
            raise VaultStatusError(
                answer.status, addr=endpoint.addr, path=path, errors=errors, body=parsed
            )
        return None, wait_at_least

    def _headers(self, token: str | None, has_body: bool) -> dict[str, str]:
        headers = {"X-Vault-Request": "true"}
        if token:
            headers["X-Vault-Token"] = token
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _prefer(self, index: int, start: int) -> None:
        if index != start:
            self.failovers += 1
            _log.info(
                "vault at %s did not answer; now using %s",
                self.addresses[start],
                self.addresses[index],
            )
        self._preferred = index


class PoolEndpoint:
    """An address reached through a urllib3 pool of keep-alive connections (public API only).

    Args:
        addr: ``https://vault.example.com:8200``.
        pool_size: connections kept (concurrent reads beyond it open extra ones, not kept).
        ca_cert, ca_path, client_cert, client_key, skip_verify: TLS, as the Vault CLI's variables.
        proxy: an HTTP proxy to go through, or None.
        clock: a monotonic clock in seconds, for the deadline.
    """

    def __init__(
        self,
        addr: str,
        *,
        pool_size: int = 16,
        ca_cert: str | None = None,
        ca_path: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        skip_verify: bool = False,
        proxy: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.addr = addr.rstrip("/")
        self._options: dict[str, Any] = {"maxsize": pool_size, "block": False}
        if self.addr.startswith("https://"):
            self._options.update(
                cert_reqs="CERT_NONE" if skip_verify else "CERT_REQUIRED",
                ca_certs=ca_cert,
                ca_cert_dir=ca_path,
                cert_file=client_cert,
                key_file=client_key,
            )
        self._proxy = proxy
        self._clock = clock
        self._manager: Any = None

    def __repr__(self) -> str:
        return f"PoolEndpoint({self.addr!r}{', proxied' if self._proxy else ''})"

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], deadline: float
    ) -> Answer:
        """Send one request and read the whole answer by ``deadline`` (see :class:`Endpoint`)."""
        import urllib3

        remaining = deadline - self._clock()
        if remaining <= 0:
            raise Unreachable("timed out")
        manager = self._manager or self._build()
        try:
            response = manager.request(
                method,
                f"{self.addr}/v1/{path}",
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                timeout=urllib3.Timeout(connect=remaining, read=remaining),
                preload_content=False,
            )
        except urllib3.exceptions.SSLError as exc:
            raise TLSFailure(_ssl_reason(exc)) from None
        except urllib3.exceptions.NewConnectionError:  # a subclass of the timeout error
            raise Unreachable("connection failed") from None
        except urllib3.exceptions.TimeoutError:
            raise Unreachable("timed out") from None
        except (urllib3.exceptions.HTTPError, OSError):
            raise Unreachable("connection failed") from None
        return Answer(response.status, dict(response.headers), self._read(response, deadline))

    def _read(self, response: Any, deadline: float) -> bytes:
        """The whole body, unless the deadline passes or it grows past the limit."""
        import urllib3

        parts: list[bytes] = []
        size = 0
        complete = False
        try:
            while True:
                chunk = response.read1(_CHUNK_BYTES)
                if not chunk:
                    complete = True
                    break
                parts.append(chunk)
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise Unreachable(f"answer larger than {MAX_BODY_BYTES} bytes")
                if self._clock() > deadline:
                    raise Unreachable("timed out reading the answer")
        except urllib3.exceptions.TimeoutError:
            raise Unreachable("timed out reading the answer") from None
        except (urllib3.exceptions.HTTPError, OSError):
            raise Unreachable("connection lost while reading the answer") from None
        finally:
            if not complete:
                response.close()  # a half-read connection must never serve another request
            response.release_conn()
        return b"".join(parts)

    def _build(self) -> Any:
        import urllib3

        manager: urllib3.PoolManager
        if self._proxy:
            manager = urllib3.ProxyManager(self._proxy, num_pools=2, **self._options)
        else:
            manager = urllib3.PoolManager(num_pools=2, **self._options)
        self._manager = manager
        return manager

    def reset(self) -> None:
        """Drop the pool without touching its sockets (the parent may still be using them)."""
        self._manager = None

    def close(self) -> None:
        """Close the pool's connections."""
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.clear()


class HvacEndpoint:
    """An address reached through a ready-made ``hvac.Client`` (its public adapter).

    The client's own settings (TLS, proxies, timeout) apply; the deadline is its timeout.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.addr = str(client.url).rstrip("/")

    def __repr__(self) -> str:
        return f"HvacEndpoint({self.addr!r})"

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], deadline: float
    ) -> Answer:
        """Send one request through hvac's adapter (see :class:`Endpoint`)."""
        import requests

        adapter = self.client.adapter
        token = headers.get("X-Vault-Token")
        if token is not None and adapter.token != token:
            adapter.token = token
        kwargs: dict[str, Any] = {"raise_exception": False}
        if body is not None:
            kwargs["json"] = json.loads(body)
        try:
            response = adapter.request(method, f"v1/{path}", **kwargs)
        except requests.exceptions.SSLError as exc:
            raise TLSFailure(_ssl_reason(exc)) from None
        except requests.exceptions.Timeout:
            raise Unreachable("timed out") from None
        except requests.exceptions.RequestException:
            raise Unreachable("connection failed") from None
        if isinstance(response, dict):  # hvac's JSONAdapter hands back parsed 2xx bodies
            return Answer(200, {}, json.dumps(response).encode("utf-8"))
        return Answer(int(response.status_code), dict(response.headers), response.content)

    def reset(self) -> None:
        """Close the client's session in this process; it opens new connections on next use."""
        self.client.adapter.close()

    def close(self) -> None:
        """Close the client's session."""
        self.client.adapter.close()


# -- helpers ----------------------------------------------------------------------------------


def _scrub(text: str, secrets: Sequence[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    # Server messages can be long multi-line lists ("1 error occurred:\n\t* ..."); one line.
    return " ".join(text.split())[:300]


def _json(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _retry_wait(answer: Answer) -> float:
    """The least wait before asking again: the server's ``Retry-After`` (429: at least 0.5 s)."""
    raw = answer.headers.get("Retry-After") or answer.headers.get("retry-after") or ""
    try:
        hinted = min(max(float(raw), 0.0), _MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        hinted = 0.0
    if answer.status == 429:
        # Vault rounds Retry-After down to whole seconds ("0" for "under one").
        hinted = max(hinted, _MIN_RATE_LIMIT_WAIT_SECONDS)
    return hinted


def _describe_status(answer: Answer, token: str | None) -> str:
    errors = _json(answer.body).get("errors") or []
    detail = _scrub("; ".join(str(e) for e in errors), (token,))
    meaning = {
        412: "standby not caught up",
        429: "rate limited or standby busy",
        500: "server error",
        502: "bad gateway",
        503: "sealed, standby or unavailable",
        504: "gateway timeout",
    }.get(answer.status, "error")
    return f"{answer.status} {meaning}" + (f" ({detail})" if detail else "")


def _tls_error(addr: str, path: str, reason: str) -> BackendTLSError:
    return BackendTLSError(
        f"the TLS connection to vault at {addr} failed ({reason}); set VAULT_CACERT (or "
        "VAULT_CAPATH) to the CA that signed its certificate, and VAULT_CLIENT_CERT and "
        "VAULT_CLIENT_KEY if it requires a client certificate (VAULT_SKIP_VERIFY=true turns "
        "verification off: development only)",
        backend="vault",
        path=path,
    )


def _ssl_reason(exc: BaseException) -> str:
    text = str(exc)
    lowered = text.lower()
    for marker in (
        "certificate_verify_failed",
        "certificate verify failed",
        "hostname mismatch",
        "certificate required",
        "unknown ca",
        "bad certificate",
    ):
        if marker in lowered:
            tail = text[lowered.index(marker) :]
            return _scrub(tail.split("'")[0].split(")")[0], ())
    return "TLS handshake failed"
