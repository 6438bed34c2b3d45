"""Log lines as JSON (``YOSAI_LOG_FORMAT=json``): one object per line, for a log pipeline.

Each line holds ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``
and ``pid``, then the record's extra fields (``extra={...}``), then ``exception``/``stack`` when
there is one. ``YOSAI_LOG_FORMAT=text`` (the default) keeps the plain lines.

Redaction applies as to text lines: every handler set up here carries the
:class:`~yosai_secrets.secret.RedactingFilter`, and the formatter masks the rendered message, the
extra fields and the traceback once more itself, so a record that reached it some other way
(a handler added later, without the filter) still shows no registered secret value.

Used by the command line (:func:`configure`), the development server (through it) and gunicorn
(:func:`gunicorn_logconfig`, in :mod:`yosai_secrets.api.gunicorn_conf`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from .errors import ConfigurationError
from .secret import MASK, RedactingFilter, Secret, install_redaction, redact

__all__ = [
    "FORMATS",
    "FORMAT_VARIABLE",
    "TEXT_FORMAT",
    "JsonFormatter",
    "configure",
    "gunicorn_logconfig",
    "log_format",
]

#: The variable that chooses the format.
FORMAT_VARIABLE: Final = "YOSAI_LOG_FORMAT"
#: Its values.
FORMATS: Final = ("text", "json")
#: The plain line the command line has always written.
TEXT_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"

# The attributes every LogRecord has (anything else came from extra=), and what formatting adds.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)


def log_format(environ: Mapping[str, str] | None = None) -> str:
    """The format ``YOSAI_LOG_FORMAT`` asks for: ``text`` (unset or empty) or ``json``.

    Raises:
        ConfigurationError: any other value (the message lists the valid ones).
    """
    raw = (os.environ if environ is None else environ).get(FORMAT_VARIABLE, "")
    chosen = raw.strip().lower() or "text"
    if chosen not in FORMATS:
        raise ConfigurationError(
            f"{FORMAT_VARIABLE}={raw!r} is not a log format: use one of {', '.join(FORMATS)}"
        )
    return chosen


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module), masking secret values."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object on one line (newlines in text are escaped by JSON)."""
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        document: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(_message(record)),
            "pid": record.process,
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in document:
                document[name] = _field(value)
        if record.exc_info and record.exc_info[0] is not None:
            document["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            document["exception"] = redact(record.exc_text)
        if record.stack_info:
            document["stack"] = redact(record.stack_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a broken format string: its parts, rather than losing the record
        return f"{record.msg!s} {record.args!r}"


def _field(value: Any) -> Any:
    """An extra field, JSON-ready and masked (numbers and booleans kept as they are)."""
    if isinstance(value, Secret):
        return MASK
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_field(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _field(item) for key, item in value.items()}
    try:
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    except Exception:
        return "<unprintable>"
    return redact(text)


def configure(level: int, environ: Mapping[str, str] | None = None) -> None:
    """Set up the root logger as the command line does: text or JSON lines on stderr, redacted.

    Raises:
        ConfigurationError: ``YOSAI_LOG_FORMAT`` has an unknown value.
    """
    if log_format(environ) == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=level, handlers=[handler])
    else:
        logging.basicConfig(level=level, format=TEXT_FORMAT)
    install_redaction()


def gunicorn_logconfig(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: JSON lines for its own logs and the app's, or ``{}``.

    ``{}`` (text) leaves gunicorn's logging as it is. With JSON, the error log and the root (the
    app's loggers) go to stderr, the access log to stdout, each handler redacting.

    Raises:
        ConfigurationError: ``YOSAI_LOG_FORMAT`` has an unknown value.
    """
    if log_format(environ) != "json":
        return {}
    redacting = f"{RedactingFilter.__module__}.{RedactingFilter.__qualname__}"

    def handler(stream: str) -> dict[str, Any]:
        return {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["redact"],
            "stream": f"ext://sys.{stream}",
        }

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "filters": {"redact": {"()": redacting}},
        "handlers": {"error_console": handler("stderr"), "console": handler("stdout")},
        # WARNING, as the root's default in text (the app's info lines are not shown either);
        # gunicorn's error log keeps the level gunicorn set (--log-level).
        "root": {"level": "WARNING", "handlers": ["error_console"]},
        "loggers": {
            "gunicorn.error": {"handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }
