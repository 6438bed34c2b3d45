"""The public edge: an error of ours leaves the library without the frames that held values.

An error reporter (Sentry, Rollbar, ``traceback.TracebackException(capture_locals=True)``, a
debugger's post-mortem) shows every frame of a traceback with its local variables. Deep inside a
read, frames hold the raw value: the JSON a field was selected from, the bytes of a file, a
decrypted token. The message of our error never names a value; the frames would.

:func:`public_edge` wraps a public entry point (``SecretManager.get`` and friends): when one of our
errors leaves it, the frames below the entry point are cut from that error and from every
exception of its ``__cause__`` chain. What stays is the message (key, backend, path, what to do),
the types along the chain, and the frames from the entry point up: the caller's own code, which
is where a user looks. Errors that are not ours (a bug) keep their frames: they carry no value of
ours by design, and a maintainer needs them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from .errors import YosaiSecretsError

__all__ = ["cut_frames", "leaving", "public_edge"]

P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E", bound=BaseException)

_MAX_CHAIN = 32  # a chain is short; a cycle (possible by hand) must not loop forever


def cut_frames(error: BaseException) -> None:
    """Drop the traceback of ``error`` and of each exception along its ``__cause__`` chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__


def leaving(error: E) -> E:
    """Cut the frames of ``error`` (and its causes) and return it: ``raise leaving(error)``.

    For a hot path, where a wrapper's call would cost more than the read: re-raised from the
    entry point's own ``except`` clause, the error's traceback starts at the entry point.
    """
    cut_frames(error)
    return error


def public_edge(func: Callable[P, R]) -> Callable[P, R]:
    """Make ``func`` a public edge: our errors leave it without the frames below it."""

    @functools.wraps(func)
    def edge(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except YosaiSecretsError as error:
            raise leaving(error) from error.__cause__  # from here up: the caller's frames

    return edge
