"""The Vault/OpenBao transport: one hvac client per address, timeouts, retries, failover.

Every request goes to the address that answered last; on a connection error, a timeout, a 5xx
(sealed, standby without a leader), 412 (a standby not yet caught up) or 429 (rate limit, or a
standby asking to come back later) it moves on to the next address of ``VAULT_ADDR`` at once, and
after a full round without an answer it waits (exponential backoff with jitter, at least the
server's ``Retry-After``) before the next round, for at most ``1 + max_retries`` rounds.
A TLS failure is not retried: a certificate does not fix itself.

Other answers (403, 404, 400) are returned to the caller as :class:`VaultStatusError`, which the
backend turns into a precise error naming the path. No message carries a token or a value: the
server's error strings are scrubbed of the current token, and a chained ``requests`` exception is
stripped of its request (which holds the token header) before it becomes a ``__cause__``.
"""

from __future__ import annotations

import logging
import random
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
    ) -> None:
        if not clients:
            raise ValueError("VaultTransport needs at least one client")
        self.clients = list(clients)
        self.addresses = [str(c.url).rstrip("/") for c in self.clients]
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
        import requests

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
                client = self.clients[index]
                addr = self.addresses[index]
                adapter = client.adapter
                if token is not None and adapter.token != token:
                    adapter.token = token
                try:
                    if body is None:
                        answer = adapter.request(method, url, raise_exception=False)
                    else:
                        answer = adapter.request(method, url, json=body, raise_exception=False)
                except requests.exceptions.SSLError as exc:
                    raise BackendTLSError(
                        f"the TLS certificate of vault at {addr} could not be verified "
                        f"({_ssl_reason(exc)}); set VAULT_CACERT to the CA bundle that signed "
                        "it (VAULT_SKIP_VERIFY=true turns verification off: development only)",
                        backend="vault",
                        path=path,
                    ) from _strip(exc)
                except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                    kind = (
                        "timed out"
                        if isinstance(exc, requests.exceptions.Timeout)
                        else "connection failed"
                    )
                    problems[addr] = kind
                    last_exc = _strip(exc)
                    continue
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
