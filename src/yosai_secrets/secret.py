"""Secret, a masked value, and the redaction of handed-out values in logs.

A :class:`Secret` never shows its value in ``repr``, ``str`` or formatting; ``reveal()`` is the one
explicit way out. :class:`RedactingFilter` replaces every value that a manager has handed out with
``**********`` in log messages, their arguments and exception text.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import logging

__all__ = [
    "MASK",
    "RedactingFilter",
    "Secret",
    "install_redaction",
    "redact",
    "register_secret_value",
    "url_without_credentials",
]

MASK: Final = "**********"

# Values shorter than this are not redacted: masking every "1" or "on" in every log line would
# make logs unreadable, and a secret that short is rejected by validation anyway.
_MIN_REDACTED_LENGTH: Final = 4


class Secret:
    """A secret value that does not show itself.

    ``repr``, ``str`` and ``format`` give ``**********``; ``reveal()`` gives the value. Two secrets
    are equal when their values are equal (compared in constant time).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret takes a str value")
        self._value = value

    def reveal(self) -> str:
        """Return the secret value itself."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return format(MASK, format_spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac

        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled; reveal() it explicitly if you must")


#: The most values the redaction registry holds (the most recently read are kept).
MAX_REDACTED: Final = 4096


class _Registry:
    """The process-wide set of values to redact, longest first; the most recent MAX_REDACTED.

    Bounded: every log line is checked against every value, and a process that reads ever new
    secrets (a million distinct keys) must not grow, nor slow each line, without limit. A value
    read again is registered again and becomes the most recent; the oldest are dropped first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, None] = {}  # insertion order: the oldest first
        self._ordered: tuple[str, ...] | None = ()

    def add(self, value: str) -> None:
        if len(value) < _MIN_REDACTED_LENGTH:
            return
        with self._lock:
            # Multi-line values are also redacted line by line (a PEM key logged in pieces).
            for item in (value, *(line for line in value.splitlines() if len(line) >= 16)):
                self._values.pop(item, None)
                self._values[item] = None
            while len(self._values) > MAX_REDACTED:
                del self._values[next(iter(self._values))]
            self._ordered = None  # sorted again when a line is next redacted

    def values(self) -> tuple[str, ...]:
        ordered = self._ordered
        if ordered is None:
            with self._lock:
                # Longest first, so that a value containing another is masked whole.
                ordered = tuple(sorted(self._values, key=len, reverse=True))
                self._ordered = ordered
        return ordered

    def after_fork_in_child(self) -> None:
        # A fork while another thread registers a value would leave the child's copy locked.
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._ordered = ()

    def __len__(self) -> int:
        return len(self._values)


_REGISTRY: Final = _Registry()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_REGISTRY.after_fork_in_child)


def register_secret_value(value: str) -> None:
    """Remember ``value`` so that :func:`redact` and :class:`RedactingFilter` mask it."""
    _REGISTRY.add(value)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """Return ``text`` with every registered secret value (and each of ``extra``) masked."""
    values = _REGISTRY.values()
    for value in (*values, *extra):
        if value and value in text:
            text = text.replace(value, MASK)
    return text


def _redact_arg(arg: object) -> object:
    if isinstance(arg, Secret):
        return MASK
    if arg is None or isinstance(arg, bool):
        return arg
    try:
        text = arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)
    except Exception:  # an object whose str() fails: nothing of it is shown
        return "<unprintable>"
    redacted = redact(text)
    return redacted if redacted != text else arg


class RedactingFilter:
    """A logging filter that masks every value a secret manager has handed out.

    It rewrites the record's message, arguments and exception text in place, so every handler and
    formatter after it sees only masked text. Install it on handlers (see
    :func:`install_redaction`): a logger's own filters never see records propagated from children.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; always keep it (return True)."""
        if not _REGISTRY.values():
            return True
        # The rendered line, not its pieces: a value logged in parts ("%s%s", v[:10], v[10:]) or
        # through a conversion ("%d", int(v)) is whole only once rendered.
        try:
            rendered = record.getMessage()
        except Exception:  # a broken format: show its parts, masked, rather than lose the record
            rendered = " ".join(str(_redact_arg(p)) for p in (record.msg, record.args))
        record.msg = redact(rendered)
        record.args = ()
        for name, value in list(vars(record).items()):
            if name not in _standard_record_fields():  # extra={...} fields, however formatted
                masked = _redact_arg(value)
                if masked is not value:
                    setattr(record, name, masked)
        if record.exc_info and record.exc_info[0] is not None:
            # Format the traceback now, masked, and drop exc_info so no formatter re-renders it.
            import logging

            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


@functools.cache
def _standard_record_fields() -> frozenset[str]:
    """The attributes every LogRecord has; anything else came from ``extra=``."""
    import logging

    blank = logging.LogRecord("", 0, "", 0, "", (), None)
    return frozenset(vars(blank).keys() | {"message", "asctime", "taskName"})


def install_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Install one :class:`RedactingFilter` on every handler of ``logger`` (default: the root).

    Handlers that already have one are left alone, so calling this twice is harmless. If the
    logger has no handler yet, a stderr handler is added, so that records are not lost to
    :data:`logging.lastResort`, which no filter can reach. Returns the filter, which may be added
    to handlers created later.
    """
    import logging

    target = logger if logger is not None else logging.getLogger()
    found = next(
        (f for h in target.handlers for f in h.filters if isinstance(f, RedactingFilter)), None
    )
    flt = found if found is not None else RedactingFilter()
    if not target.handlers:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        target.addHandler(stream)
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)
    return flt


def url_without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` removed, fit to show in a message or a log line."""
    scheme, sep, rest = url.partition("://")
    if not sep:  # no scheme ("admin:pw@host:8200"): the authority starts the text
        scheme, rest = "", url
    authority, slash, tail = rest.partition("/")
    if "@" not in authority:
        return url
    return f"{scheme}{sep}{authority.rpartition('@')[2]}{slash}{tail}"
