"""SIGHUP: forget every cached secret (and the JWKS, and the configuration) in this process.

Under gunicorn, each worker installs the handler when it loads the app. A HUP sent to one worker
clears that worker's caches; a HUP sent to the master (``docker kill --signal=HUP``, which reaches
PID 1) makes gunicorn replace every worker gracefully, and new workers start with empty caches.
Either way, no process keeps serving a value from before the signal.
"""

from __future__ import annotations

import logging
import signal
import threading
import weakref
from types import FrameType
from typing import Any

from ..flask import YosaiSecrets
from ..manager import invalidate_secret

__all__ = ["clear_every_cache", "cleared_count", "install_sighup"]

_log = logging.getLogger("yosai_secrets.api.signals")


class _Registry:
    """The extensions of this process whose caches a SIGHUP clears (held weakly)."""

    def __init__(self) -> None:
        self.extensions: weakref.WeakSet[YosaiSecrets] = weakref.WeakSet()
        self.previous: Any = None
        self.installed = False
        self.cleared = 0
        self.lock = threading.Lock()


_REGISTRY = _Registry()


def clear_every_cache() -> int:
    """Clear the caches of every registered extension and the process-wide manager.

    Returns how many cached paths were forgotten.
    """
    count = 0
    for ext in list(_REGISTRY.extensions):
        count += ext.clear_caches()
    count += invalidate_secret()
    _REGISTRY.cleared += 1
    _log.warning(
        "SIGHUP: forgot every cached secret (%d path(s)); next reads go to the source", count
    )
    return count


def cleared_count() -> int:
    """How many times :func:`clear_every_cache` has finished in this process."""
    return _REGISTRY.cleared


def _on_sighup(signum: int, frame: FrameType | None) -> None:
    # The handler runs in the main thread between two bytecodes, maybe while that thread holds a
    # cache lock (gunicorn's sync worker serves requests there): clearing in another thread
    # cannot deadlock on it.
    threading.Thread(target=clear_every_cache, name="yosai-secrets-sighup", daemon=True).start()
    previous = _REGISTRY.previous
    if callable(previous):
        previous(signum, frame)


def install_sighup(ext: YosaiSecrets) -> bool:
    """Make SIGHUP clear ``ext``'s caches; returns False when it cannot be installed here.

    Signal handlers can only be installed from the main thread (and not on Windows).
    """
    if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
        return False
    with _REGISTRY.lock:
        _REGISTRY.extensions.add(ext)
        current = signal.getsignal(signal.SIGHUP)
        if current is not _on_sighup:
            _REGISTRY.previous = current if callable(current) else None
            signal.signal(signal.SIGHUP, _on_sighup)
        _REGISTRY.installed = True
    return True
