"""Fork safety: after ``os.fork()`` every object of ours drops what it shares with the parent.

A process that forks after reading secrets (``gunicorn --preload``, ``multiprocessing`` with the
``fork`` start method, a Celery prefork pool) hands its children copies of its keep-alive sockets,
its locks (possibly held by a thread that does not exist in the child) and its in-flight state.
A child writing a request on a socket the parent also uses reads the parent's answer: the value of
another key, or another process's response. So each object that owns a connection pool, a client,
a lock, a background thread or in-flight state registers here, and in the child, before anything
else runs, :func:`os.register_at_fork`'s ``after_in_child`` hook calls its ``after_fork_in_child``
method: it rebuilds (lazily) what it must not share. Cached values are kept: they are the parent's
and valid. The parent is untouched.

Registration holds a weak reference, so a registered object is collected as usual, and costs
nothing on the hot path (no ``os.getpid()`` check per read).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol

__all__ = ["ForkAware", "forks_seen", "register"]


class ForkAware(Protocol):
    """Something that must rebuild its shared state in a forked child."""

    def after_fork_in_child(self) -> None:
        """Drop the connections, clients, threads, locks and in-flight state of the parent."""
        ...


class _Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: weakref.WeakSet[ForkAware] = weakref.WeakSet()
        self.forks = 0
        self.hooked = False


_REGISTRY = _Registry()


def register(obj: ForkAware) -> None:
    """Have ``obj.after_fork_in_child()`` called in every child forked from now on."""
    with _REGISTRY.lock:
        _REGISTRY.objects.add(obj)
        if not _REGISTRY.hooked and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _REGISTRY.hooked = True


def forks_seen() -> int:
    """How many forks this process was born of, counted since the first registration."""
    return _REGISTRY.forks


def _after_fork_in_child() -> None:
    # The registry's own lock may have been held by another thread of the parent at the fork.
    _REGISTRY.lock = threading.Lock()
    _REGISTRY.forks += 1
    for obj in list(_REGISTRY.objects):
        try:
            obj.after_fork_in_child()
        except Exception as exc:  # one object's failure must not leave the others shared
            import logging

            logging.getLogger("yosai_secrets.forksafe").warning(
                "resetting %s after fork failed (%s); it will not be used safely in this process",
                type(obj).__name__,
                type(exc).__name__,
            )
