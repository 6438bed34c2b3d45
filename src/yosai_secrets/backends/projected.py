"""Watching kubelet-projected volumes, so that a Secret mounted as files updates in place.

The kubelet writes a mounted Secret (or ConfigMap) as a timestamped directory
(``..2026_11_29_10_00_00.123456789``), a ``..data`` link to it, and one link per key
(``db_password -> ..data/db_password``). An update writes a new timestamped directory and swaps
``..data`` with one atomic rename of a new link. So one ``readlink`` of ``..data`` per watched
directory tells whether anything in it changed: a background thread does that every
``SECRETS_WATCH_INTERVAL`` seconds (default 2; 0: off) and has the manager forget the keys read
from a directory whose link moved. A cached read pays nothing; a read from the source (a cache
miss) pays a dictionary lookup, plus one ``readlink`` the first time a directory is seen.
The thread starts on the first read from such a directory, never when none is used.
"""

from __future__ import annotations

import os
import threading
import types
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from .. import forksafe
from ..envvars import env_seconds

__all__ = [
    "DATA_LINK",
    "DEFAULT_WATCH_INTERVAL_SECONDS",
    "FileNote",
    "ProjectedWatcher",
    "Watchable",
    "data_target",
]

DATA_LINK: Final = "..data"
DEFAULT_WATCH_INTERVAL_SECONDS: Final = 2.0
_MAX_PLAIN_DIRS: Final = 1024


#: Called by a backend just before it reads a file: (the file's path, the backend's path).
FileNote = Callable[[str, str], None]
#: What the watcher calls when a directory changed: the keys read from it; returns how many
#: cached paths were forgotten.
Invalidate = Callable[[list[str]], int]


def _logger() -> Any:
    """This module's logger; logging is imported when there is something to say, not at start-up."""
    import logging

    return logging.getLogger("yosai_secrets.projected")


class Watchable(Protocol):
    """A backend that reads secret files and says which, before it reads them."""

    name: str

    def watch_files(self, note: FileNote) -> None:
        """Call ``note(file_path, path)`` before each file read for ``path`` from now on."""
        ...


def data_target(directory: str) -> str | None:
    """Where ``directory/..data`` points, or None when it is not a kubelet-projected directory."""
    try:
        return os.readlink(os.path.join(directory, DATA_LINK))
    except (OSError, ValueError):  # no such link, not a link, a NUL byte in the path
        return None


class _Watched:
    """A projected directory: the ``..data`` target last seen, and the keys read from it."""

    __slots__ = ("keys", "target")

    def __init__(self, target: str | None) -> None:
        self.target = target
        self.keys: set[str] = set()


class ProjectedWatcher:
    """Notices a swap of ``..data`` in the directories secrets were read from; forgets their keys.

    Args:
        invalidate: told the keys of a directory that changed; held weakly when it is a bound
            method (the thread must not keep a manager alive).
        interval_seconds: how often each watched directory's link is read (> 0).
    """

    def __init__(self, invalidate: Invalidate, *, interval_seconds: float) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be > 0 (a watcher that is off is None)")
        self._invalidate: Callable[[], Invalidate | None] = (
            weakref.WeakMethod(invalidate)
            if isinstance(invalidate, types.MethodType)
            else lambda: invalidate
        )
        self.interval_seconds = interval_seconds
        self._lock = threading.Lock()
        self._watched: dict[str, _Watched] = {}
        self._plain: set[str] = set()  # directories seen without a ..data link
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        forksafe.register(self)

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], invalidate: Invalidate
    ) -> ProjectedWatcher | None:
        """A watcher polling every ``SECRETS_WATCH_INTERVAL`` seconds, or None when it is 0.

        Raises:
            ConfigurationError: ``SECRETS_WATCH_INTERVAL`` is not a number of seconds >= 0.
        """
        interval = env_seconds(environ, "SECRETS_WATCH_INTERVAL", DEFAULT_WATCH_INTERVAL_SECONDS)
        return cls(invalidate, interval_seconds=interval) if interval > 0 else None

    def __repr__(self) -> str:
        return f"ProjectedWatcher(directories={len(self._watched)}, running={self.running})"

    @property
    def running(self) -> bool:
        """Whether the polling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def directories(self) -> list[str]:
        """The projected directories watched so far."""
        with self._lock:
            return list(self._watched)

    def attach(self, backend: object) -> None:
        """Have ``backend`` (if it reads files) report each file it reads, as key ``name:path``."""
        if not callable(getattr(backend, "watch_files", None)):
            return
        watchable: Watchable = backend  # type: ignore[assignment]
        scheme = watchable.name

        def note(file_path: str, path: str) -> None:
            self.note(file_path, f"{scheme}:{path}")

        watchable.watch_files(note)

    def note(self, file_path: str, key: str) -> None:
        """Record that ``key`` is about to be read from ``file_path``.

        Called before the read: a swap after this point is seen by the next poll.
        """
        directory = os.path.dirname(file_path)
        if not os.path.isabs(directory):
            directory = os.path.abspath(directory)
        watched = self._watched.get(directory)
        if watched is None:
            if directory in self._plain:
                return  # the common case without projected volumes: one set lookup
            watched = self._first_sight(directory)
            if watched is None:
                return
        with self._lock:
            watched.keys.add(key)
        if self._thread is None:
            self._start()

    def close(self) -> None:
        """Stop the polling thread (a later read from a projected directory starts it again)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.interval_seconds + 1.0)

    def after_fork_in_child(self) -> None:
        """In a forked child: a new lock, and a thread of its own if the parent's was running.

        Started here, not on the next read: a child serving cached values may never read again.
        """
        running = self._thread is not None  # the parent's thread; it does not exist here
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if running:
            self._start()

    # -- internals ---------------------------------------------------------------------------

    def _first_sight(self, directory: str) -> _Watched | None:
        target = data_target(directory)
        with self._lock:
            if target is None:
                if len(self._plain) >= _MAX_PLAIN_DIRS:
                    self._plain.clear()  # paths may come from anywhere: keep the set bounded
                self._plain.add(directory)
                return None
            watched = self._watched.setdefault(directory, _Watched(target))
        _logger().debug(
            "watching projected volume %s (every %gs)", directory, self.interval_seconds
        )
        return watched

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run,
                args=(self._stop,),
                name="yosai-secrets-projected-watch",
                daemon=True,
            )
            self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_seconds):
            try:
                if not self.poll():
                    return
            except Exception as exc:  # a failure here must not end the watching for good
                _logger().warning("watching projected volumes failed (%s)", type(exc).__name__)

    def poll(self) -> bool:
        """Read each watched ``..data`` link once; forget the keys of the directories that moved.

        Returns False when whoever was told is gone (the manager was collected).
        """
        for directory, keys in self._changed():
            invalidate = self._invalidate()
            if invalidate is None:
                return False
            count = invalidate(keys)
            _logger().info(
                "projected volume %s changed: forgot %d key(s) read from it (%d cached path(s))",
                directory,
                len(keys),
                count,
            )
        return self._invalidate() is not None

    def _changed(self) -> list[tuple[str, list[str]]]:
        with self._lock:
            watched = list(self._watched.items())
        changed = []
        for directory, state in watched:
            target = data_target(directory)  # outside the lock: a slow mount blocks no reader
            with self._lock:
                if target != state.target:
                    state.target = target
                    changed.append((directory, sorted(state.keys)))
        return changed
