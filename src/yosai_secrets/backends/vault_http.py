"""The Vault/OpenBao transport: one connection pool per address, deadlines, retries, failover.

Every request goes to the address that answered last; on a connection error, a timeout, a 5xx
(sealed, standby without a leader), a 307/308 (a standby sending the request to its leader: not
followed), 412 (a standby not yet caught up) or 429 (rate limit, or a standby asking to come back
later) it moves on to the next address of ``VAULT_ADDR`` at once, and
after a full round without an answer it waits (exponential backoff with full jitter: uniform in
``[0, cap]``, drawn per process, so that clients that failed together come back apart; at least
the server's ``Retry-After``) before the next round, for at most ``1 + max_retries`` rounds.
A TLS failure is not retried: a certificate does not fix itself.

Each address is an :class:`~.vault_endpoints.Endpoint` (see :mod:`.vault_endpoints`: a urllib3
pool of our own, or a given ``hvac.Client``). Each attempt has a deadline for the whole answer
(``VAULT_TIMEOUT``), not only per socket read.

Other answers (403, 404, 400) are returned to the caller as :class:`VaultStatusError`, which the
backend turns into a precise error naming the path. No message carries a token or a value: the
server's error strings are scrubbed of the current token, and no exception that holds a request
(whose headers carry the token) is kept as a cause.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from ..errors import (
    BackendAuthError,
    BackendError,
    BackendTLSError,
    BackendUnavailableError,
    ConfigurationError,
)
from ..jitter import Rng, full_jitter, urandom_fraction
from ..references import shown
from .vault_auth import fits_a_header
from .vault_endpoints import Answer, Endpoint, TLSFailure, Unreachable, scrub

__all__ = ["RETRYABLE_STATUSES", "VaultStatusError", "VaultTransport"]

_log = logging.getLogger("yosai_secrets.backends.vault")

#: Answers that another address, or the same one a moment later, may not give. A 307/308 is a
#: standby pointing at its leader (perhaps a dead one): never followed, as the token would go
#: with it to wherever the Location says; the other addresses of VAULT_ADDR are tried instead.
RETRYABLE_STATUSES: Final = frozenset({307, 308, 412, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_SECONDS: Final = 10.0
_WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _LatestWrite:
    """The ``X-Vault-Index`` of this process's latest write: read-your-writes on standbys.

    OpenBao's standbys serve reads from their own copy of the Raft log, which may lag a write by
    some milliseconds. A read that carries the index of the last write with
    ``X-Vault-Inconsistent: forward-active-node`` is forwarded to the active node when the standby
    has not applied it yet (docs: concepts/consistency), so a rotation written by this process is
    read back at once. Process-wide on purpose: the rotation's store and the reading backend are
    two clients of one cluster. Servers without index support ignore both headers.
    """

    index = ""


def _header(answer: Answer, name: str) -> str:
    """A response header, whatever its case."""
    wanted = name.lower()
    return next((v for k, v in answer.headers.items() if k.lower() == wanted), "")


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
        rng: a source of floats in [0, 1) for the jitter (default: ``os.urandom``, which a forked
            child or an application's ``random.seed()`` cannot put in step with other clients).
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
        rng: Rng = urandom_fraction,
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
        if method not in _WRITES and _LatestWrite.index:
            headers["X-Vault-Index"] = _LatestWrite.index
            headers["X-Vault-Inconsistent"] = "forward-active-node"
        problems: dict[str, str] = {}
        rounds = 1 + max(self.max_retries, 0)
        for round_no in range(rounds):
            answer, wait_at_least = self._round(method, path, payload, headers, token, problems)
            if answer is not None:
                return answer
            if round_no + 1 < rounds:
                self.retries += 1
                cap = min(self.max_backoff_seconds, self.backoff_seconds * (2**round_no))
                self._sleep(max(full_jitter(cap, self._rng), wait_at_least))
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
                written = _header(answer, "X-Vault-Index") if method in _WRITES else ""
                if written and fits_a_header(written):
                    _LatestWrite.index = written
                return parsed, 0.0
            errors = [scrub(str(e), (token,)) for e in parsed.get("errors") or [] if str(e).strip()]
            # The body is kept for what it says about the path (a deleted version's metadata);
            # its error strings only as scrubbed, like the message.
            body = {**parsed, "errors": errors} if "errors" in parsed else parsed
            raise VaultStatusError(
                answer.status, addr=endpoint.addr, path=path, errors=errors, body=body
            )
        return None, wait_at_least

    def _headers(self, token: str | None, has_body: bool) -> dict[str, str]:
        # A token from a login answer, a namespace from anywhere: http.client would refuse a CR/LF
        # or a non-Latin-1 character with a ValueError quoting the whole value (the token).
        if token and not fits_a_header(token):
            raise BackendAuthError(
                "the Vault token holds a character an HTTP header cannot carry (a line break, a "
                "non-ASCII letter); it is not sent",
                backend="vault",
            )
        if self.namespace and not fits_a_header(self.namespace):
            raise ConfigurationError(
                f"VAULT_NAMESPACE {shown(self.namespace)} holds a character an HTTP header cannot "
                "carry (a line break, a non-ASCII letter); set it to the namespace's path"
            )
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
    detail = scrub("; ".join(str(e) for e in errors), (token,))
    meaning = {
        307: "redirect to another node (a standby without a reachable leader?), not followed",
        308: "redirect to another node, not followed",
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
