"""OpenTelemetry spans around backend reads, when ``opentelemetry-api`` is installed.

Each read that reaches a backend (never a cache hit) runs inside a span named
``yosai_secrets.backend.read`` with the backend's name, the path and the keys read: names only,
never a value. A failed read's span has an error status and the exception of ours recorded
(its message names no value). Spans start once the application has imported OpenTelemetry
(``opentelemetry-api``, the ``tracing`` extra) to configure tracing; until then a read pays one
dictionary lookup, and nothing is imported.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

__all__ = ["SPAN_NAME", "read_span"]

SPAN_NAME = "yosai_secrets.backend.read"


class _Tracer:
    """OpenTelemetry's tracer, once the application has imported OpenTelemetry; else None.

    Never imported here: importing ``opentelemetry`` costs a few hundred milliseconds (it reads
    every installed package's entry points), which a process that does not trace must not pay on
    its first read. An application that traces has imported it to set its tracer provider.
    """

    tracer: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls.tracer is None:
            trace = sys.modules.get("opentelemetry.trace")
            if trace is None:
                return None
            from . import __version__

            cls.tracer = trace.get_tracer("yosai_secrets", __version__)
        return cls.tracer


class _NoSpan:
    """What a read runs in without OpenTelemetry (``contextlib`` need not be imported for it)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_SPAN = _NoSpan()


def read_span(backend: str, path: str, keys: str | Sequence[str]) -> AbstractContextManager[Any]:
    """The span one backend read runs in (a no-op context without OpenTelemetry)."""
    tracer = _Tracer.get()
    if tracer is None:
        return _NO_SPAN
    names = [keys] if isinstance(keys, str) else list(keys)
    return tracer.start_as_current_span(  # type: ignore[no-any-return]
        SPAN_NAME,
        attributes={
            "yosai_secrets.backend": backend,
            "yosai_secrets.path": path,
            "yosai_secrets.keys": names,
        },
    )
