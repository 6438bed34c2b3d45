"""The audit log file: JSON lines appended by any number of processes, one ``os.write`` each.

``YOSAI_AUDIT_LOG=PATH`` names the file. It is created with mode 0600 and opened with
``O_APPEND``, so every line lands whole at the end of the file whoever else writes to it: one line
is one ``write(2)``, which the kernel does not interleave with another process's append. The
descriptor is reopened when the variable changes, when the file was moved away (a log rotation) and
in a forked child (the parent's descriptor is the parent's). A failure to write is counted and
warned about once per path; it never reaches the caller, whose read must not fail for an audit log.
"""

from __future__ import annotations

import contextlib
import os
import threading

from .. import forksafe

__all__ = ["AUDIT_LOG_VARIABLE", "AuditSink"]

#: The environment variable naming the JSON-lines file (unset or empty: no file).
AUDIT_LOG_VARIABLE = "YOSAI_AUDIT_LOG"

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


class AuditSink:
    """Appends lines to the file ``YOSAI_AUDIT_LOG`` names, counting the writes that fail."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path = ""
        self._fd = -1
        self._inode: tuple[int, int] | None = None
        self._warned: set[str] = set()
        self.write_failures = 0
        self.lines_written = 0
        forksafe.register(self)

    def write(self, line: bytes, path: str | None = None) -> bool:
        """Append ``line`` (one JSON document and its newline) to the file; True when written.

        ``path`` defaults to ``YOSAI_AUDIT_LOG``; with neither, nothing is written (and True is
        returned: nothing was asked). Never raises.
        """
        target = os.environ.get(AUDIT_LOG_VARIABLE, "") if path is None else path
        if not target:
            return True
        try:
            with self._lock:
                fd = self._descriptor(target)
                written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write ({written} of {len(line)} bytes)")
        except Exception as exc:  # an audit log must never break the read it records
            self._failed(target, exc)
            return False
        self.lines_written += 1
        return True

    def close(self) -> None:
        """Close the file (it is opened again by the next write)."""
        with self._lock:
            self._close()

    def after_fork_in_child(self) -> None:
        """In a forked child: a new lock, and the parent's descriptor closed and reopened lazily."""
        self._lock = threading.Lock()
        self._close()

    # -- internals ---------------------------------------------------------------------------

    def _descriptor(self, path: str) -> int:
        # Called with the lock held. One stat per event spots a log rotation (the file renamed
        # away and a new one expected at the path): events are per backend read, not per hit.
        if self._fd >= 0 and path == self._path:
            try:
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == self._inode:
                    return self._fd
            except OSError:
                pass
        self._close()
        fd = os.open(path, _FLAGS, 0o600)
        st = os.fstat(fd)
        self._path, self._fd, self._inode = path, fd, (st.st_dev, st.st_ino)
        return fd

    def _close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self._path, self._inode = -1, "", None

    def _failed(self, path: str, exc: Exception) -> None:
        self.write_failures += 1
        if path in self._warned:
            return
        self._warned.add(path)
        import logging  # only on this rare path

        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        logging.getLogger("yosai_secrets.audit").warning(
            "cannot write audit events to %s (%s=%s): %s; reads go on, and the failures are "
            "counted in audit_write_failures; fix the path or its permissions",
            path,
            AUDIT_LOG_VARIABLE,
            path,
            reason,
        )
