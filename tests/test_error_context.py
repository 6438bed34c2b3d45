"""Our errors keep no implicit __context__: what a message leaves out is not reachable from it."""

from __future__ import annotations

import gc
import traceback
from pathlib import Path

import pytest

from yosai_secrets.backends.file import read_secret_file
from yosai_secrets.errors import ConfigurationError, YosaiSecretsError
from yosai_secrets.testing import MemoryBackend


def reachable(error: BaseException, canary: str) -> bool:
    """Whether ``canary`` is in anything an error reporter could reach from ``error``."""
    seen: list[BaseException] = []
    stack: list[BaseException | None] = [error]
    while stack:
        current = stack.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        stack += [current.__cause__, current.__context__]
    text = "".join(traceback.format_exception(error))
    texts = [text] + [repr(vars(e)) + repr(e.args) for e in seen]
    return any(canary in t for t in texts)


def test_a_context_from_an_except_block_is_dropped() -> None:
    """`raise Ours(...) from None` inside an except block leaves no __context__ behind."""
    canary = "canary-context-1"
    try:
        try:
            raise ValueError(canary)
        except ValueError:
            raise ConfigurationError("bad value") from None
    except YosaiSecretsError as exc:
        error = exc
    assert error.__context__ is None
    assert not reachable(error, canary)
    assert not any(isinstance(r, ValueError) for r in gc.get_referents(error))


def test_an_explicit_cause_is_kept() -> None:
    """`raise Ours(...) from scrubbed` keeps the cause we chose."""
    cause = ValueError("scrubbed detail")
    try:
        raise ConfigurationError("wrapped") from cause
    except YosaiSecretsError as exc:
        assert exc.__cause__ is cause and exc.__context__ is None


def test_a_bad_secret_file_error_does_not_carry_its_bytes(tmp_path: Path) -> None:
    """A file that is not UTF-8: the error names it, and its bytes are nowhere in the chain."""
    path = tmp_path / "db_password"
    path.write_bytes(b"\xff\xfecanary-bytes-2 not utf-8")
    with pytest.raises(ConfigurationError) as info:
        read_secret_file(path, what="DB_PASSWORD")
    assert "DB_PASSWORD" in str(info.value) or str(path) in str(info.value)
    assert not reachable(info.value, "canary-bytes-2")


def test_a_backend_failure_keeps_no_context(canary: str) -> None:
    """A manager error raised while handling a backend's exception keeps none of it."""
    from yosai_secrets.manager import SecretManager

    class Leaky(MemoryBackend):
        def fetch(self, path: str) -> object:
            try:
                raise RuntimeError(f"driver said {canary}")
            except RuntimeError:
                raise ConfigurationError(f"could not read {path}") from None

    with pytest.raises(ConfigurationError) as info:
        SecretManager(Leaky({})).get("K")
    assert not reachable(info.value, canary)
