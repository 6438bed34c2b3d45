"""Small facts about network addresses and failures, told without a URL (it may hold secrets)."""

from __future__ import annotations

__all__ = ["failure_reason", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    import ipaddress  # only when an address is checked: start-up need not load it

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def failure_reason(exc: BaseException) -> str:
    """Why a request failed, in a few words: never the URL or a body."""
    reason = getattr(exc, "reason", None)  # urllib's URLError wraps the socket's error
    if isinstance(reason, BaseException):
        exc = reason
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(getattr(exc, "strerror", None) or type(exc).__name__)
