"""How requests reach one Vault address: a urllib3 pool of our own, or a ready-made hvac client.

An :class:`Endpoint` sends one request and reads the whole answer by a deadline (not only per
socket read: a server that sends its body a byte at a time is cut off). :class:`PoolEndpoint` is a
urllib3 ``PoolManager`` (or ``ProxyManager``) with the TLS settings of ``VAULT_CACERT``,
``VAULT_CAPATH``, ``VAULT_CLIENT_CERT``/``VAULT_CLIENT_KEY`` and ``VAULT_SKIP_VERIFY``, used through
urllib3's public API only; :class:`HvacEndpoint` goes through a given ``hvac.Client``'s public
adapter. Retries, failover and error statuses are :mod:`.vault_http`'s job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, Protocol

__all__ = [
    "MAX_BODY_BYTES",
    "Answer",
    "Endpoint",
    "HvacEndpoint",
    "PoolEndpoint",
    "TLSFailure",
    "Unreachable",
    "scrub",
]

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
            raise TLSFailure(ssl_reason(exc)) from None
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
            raise TLSFailure(ssl_reason(exc)) from None
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


def scrub(text: str, secrets: Sequence[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    # Server messages can be long multi-line lists ("1 error occurred:\n\t* ..."); one line.
    return " ".join(text.split())[:300]


def ssl_reason(exc: BaseException) -> str:
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
            return scrub(tail.split("'")[0].split(")")[0], ())
    return "TLS handshake failed"
