"""Serving the API: gunicorn with the settings of :mod:`.gunicorn_conf`, the port check before
either server starts, and plain (uncoloured) werkzeug log lines for the development server."""

from __future__ import annotations

import errno
import logging
import re
import socket
from typing import Any, Final

from ..errors import MissingDependencyError

__all__ = ["PlainLogFilter", "plain_werkzeug_log", "port_in_use", "run_gunicorn"]

_ANSI_ESCAPE: Final = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def port_in_use(host: str, port: int) -> bool:
    """Whether another program already listens on ``host:port``.

    A trial bind made as both servers make theirs (``SO_REUSEADDR``, so a socket lingering in
    TIME_WAIT does not count). Any other failure (an unknown host, a privileged port) is False:
    the server then reports it in its own words.
    """
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return False
    family, kind, proto, _, address = found[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


class PlainLogFilter(logging.Filter):
    """Strip ANSI colour codes from a record's message and arguments.

    werkzeug colours its development-server banner and request lines whatever the output is;
    in a log (a file, ``docker logs``, a CI page) they show as ``\\x1b[31m`` garbage.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _ANSI_ESCAPE.sub("", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                _ANSI_ESCAPE.sub("", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def plain_werkzeug_log() -> None:
    """Make the ``werkzeug`` logger's lines plain text (once per process)."""
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(existing, PlainLogFilter) for existing in logger.filters):
        logger.addFilter(PlainLogFilter())


def run_gunicorn(host: str, port: int, workers: int | None = None) -> None:
    """Serve with gunicorn: the settings of :mod:`.gunicorn_conf`, bound to ``host:port``.

    Raises:
        MissingDependencyError: gunicorn is not installed.
    """
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        raise MissingDependencyError("gunicorn", "flask", "serving the API") from None
    from . import gunicorn_conf

    options: dict[str, Any] = {
        name: getattr(gunicorn_conf, name)
        for name in dir(gunicorn_conf)
        if not name.startswith("_") and name not in {"annotations", "os"}
    }
    options["bind"] = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    if workers is not None:
        options["workers"] = workers

    class _Api(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in options.items():
                if name in self.cfg.settings:
                    self.cfg.set(name, value)

        def load(self) -> Any:
            from . import create_app

            return create_app()

    _Api().run()
