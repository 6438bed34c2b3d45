"""Secret sources, each one class in one module behind the small :class:`Backend` protocol.

The registry is a plain dict from name to a factory that builds the backend from the environment;
the optional ones import their client library only when built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from ..errors import UnknownBackendError
from .base import Backend, BatchBackend, Describable, Fetched, Location

__all__ = [
    "BACKENDS",
    "SELECTABLE",
    "Backend",
    "BatchBackend",
    "Describable",
    "Fetched",
    "Location",
    "create_backend",
]


def _env(environ: Mapping[str, str]) -> Backend:
    from .env import EnvBackend

    return EnvBackend.from_environ(environ)


def _file(environ: Mapping[str, str]) -> Backend:
    from .file import FileBackend

    return FileBackend()


def _vault(environ: Mapping[str, str]) -> Backend:
    from .vault import VaultBackend

    return VaultBackend.from_environ(environ)


def _aws(environ: Mapping[str, str]) -> Backend:
    from .aws import AwsBackend

    return AwsBackend.from_environ(environ)


# Name -> factory taking the environment. SECRET_BACKEND may name env, vault or aws; ``file`` is
# reached only through ``file:`` references.
BACKENDS: Final[dict[str, Callable[[Mapping[str, str]], Backend]]] = {
    "env": _env,
    "vault": _vault,
    "aws": _aws,
    "file": _file,
}
SELECTABLE: Final = ("env", "vault", "aws")


def create_backend(name: str, environ: Mapping[str, str]) -> Backend:
    """Build the backend called ``name`` from ``environ``.

    Raises:
        UnknownBackendError: ``name`` is not a known backend; the message lists the valid ones.
    """
    factory = BACKENDS.get(name.strip().lower())
    if factory is None:
        raise UnknownBackendError(
            f"unknown secret backend {name!r} (from SECRET_BACKEND); "
            f"valid backends are: {', '.join(SELECTABLE)}"
        )
    return factory(environ)
