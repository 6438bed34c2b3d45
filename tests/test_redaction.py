"""No secret value in a repr, a log line or an error message."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from yosai_secrets import ConfigurationError, RedactingFilter, Secret, SecretManager, get_secret
from yosai_secrets.secret import MASK, install_redaction, redact


def test_secret_masks_itself(canary: str) -> None:
    """repr, str and format of a Secret show the mask; reveal() gives the value."""
    s = Secret(canary)
    for shown in (
        repr(s),
        str(s),
        f"{s}",
        f"{s:>20}",
        "%s" % (s,),  # noqa: UP031
        [s].__repr__(),
    ):
        assert canary not in shown
        assert MASK in shown
    assert s.reveal() == canary
    assert s == Secret(canary)
    assert s != Secret(canary + "x")


def test_secret_refuses_pickling(canary: str) -> None:
    """A Secret cannot be pickled (its value would travel in clear)."""
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(Secret(canary))


@pytest.mark.usefixtures("fresh_redaction")
def test_logged_secret_is_masked_on_root_handlers(
    monkeypatch: pytest.MonkeyPatch, canary: str, root_logger_capture: list[str]
) -> None:
    """A value handed out and then logged by mistake in a child logger reaches no output."""
    monkeypatch.setenv("DB_PASSWORD", canary)
    install_redaction()
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    value = get_secret("DB_PASSWORD")
    log = logging.getLogger("app.child.module")
    log.info("connecting with %s", value)
    log.info(f"inline {value} in the message")
    log.info("dict args %(pw)s", {"pw": value})
    try:
        raise ValueError(f"driver said: bad password {value}")
    except ValueError:
        log.exception("connection failed")
    joined = "\n".join(root_logger_capture)
    assert canary not in joined
    assert joined.count(MASK) >= 4


@pytest.mark.usefixtures("fresh_redaction")
def test_redact_masks_longest_first(canary: str) -> None:
    """A value containing another is masked whole."""
    from yosai_secrets.secret import register_secret_value

    register_secret_value(canary)
    register_secret_value(canary + "-longer")
    assert redact(f"x {canary}-longer y") == f"x {MASK} y"


def test_install_redaction_is_idempotent() -> None:
    """Installing twice adds one filter per handler."""
    logger = logging.getLogger("yosai-test-idempotent")
    logger.addHandler(logging.NullHandler())
    install_redaction(logger)
    install_redaction(logger)
    for handler in logger.handlers:
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1


def test_errors_never_contain_values(tmp_path: Path, canary: str) -> None:
    """Errors met on bad input name the key or file, never the value."""
    from yosai_secrets.testing import MemoryBackend

    manager = SecretManager(MemoryBackend({"db": {"password": canary}, "plain": canary}))
    bad_file = tmp_path / "bad"
    bad_file.write_bytes(canary.encode() + b"\xff")
    attempts = ["db", "db#nope", "plain#field", f"file:{bad_file}", "file:/nonexistent/x"]
    for key in attempts:
        with pytest.raises(ConfigurationError) as caught:
            manager.get(key)
        text = f"{caught.value} {caught.value!r} {caught.value.__cause__!r}"
        assert canary not in text, key


@pytest.mark.usefixtures("fresh_redaction")
def test_non_text_messages_are_masked(
    monkeypatch: pytest.MonkeyPatch, canary: str, root_logger_capture: list[str]
) -> None:
    """An exception, a dict or a list logged as the message itself is masked too."""
    monkeypatch.setenv("DB_PASSWORD", canary)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    value = get_secret("DB_PASSWORD")
    log = logging.getLogger("app.objects")
    log.error(ValueError(f"bad {value}"))
    log.info({"pw": value})
    log.info(["a", value])
    joined = "\n".join(root_logger_capture)
    assert canary not in joined
    assert joined.count(MASK) == 3


@pytest.mark.usefixtures("fresh_redaction")
def test_values_logged_in_pieces_conversions_and_extra_fields_are_masked(
    monkeypatch: pytest.MonkeyPatch, root_logger_capture: list[str]
) -> None:
    """The rendered line and every extra= field are masked, however the value got there."""
    import json

    value = "7" * 8 + "31415926535897932384"  # digits, so that it survives int()
    monkeypatch.setenv("DB_PASSWORD", value)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    got = get_secret("DB_PASSWORD")
    log = logging.getLogger("app.pieces")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keeper = Keep()
    keeper.addFilter(RedactingFilter())
    log.addHandler(keeper)
    try:
        log.warning("%s%s", got[:10], got[10:])  # in two pieces
        log.warning("%d", int(got))  # through a conversion
        log.warning("%s-%s-%s", got[:5], got[5:12], got[12:])  # in three
        log.warning("%r", [got[:9], got[9:]])  # pieces inside a container: not whole anywhere
        log.warning("login", extra={"password": got, "nested": {"pw": got}, "n": int(got)})
        log.warning("%s %s", "too", "many", "args")  # a broken format still masks and logs
    finally:
        log.removeHandler(keeper)
    rendered = [r.getMessage() for r in records]
    extras = [json.dumps({k: str(v) for k, v in vars(r).items()}) for r in records]
    assert all(value not in line for line in rendered[:3]), rendered
    assert all(value not in line for line in extras[4:5]), extras[4]
    assert value not in "\n".join(root_logger_capture)
    assert len(records) == 6


def test_the_registry_is_bounded_and_keeps_the_most_recent(fresh_redaction: None) -> None:
    """A process reading ever new secrets keeps the newest MAX_REDACTED values, masked."""
    from yosai_secrets.secret import _REGISTRY, MAX_REDACTED, redact, register_secret_value

    first = "value-first-0000"
    register_secret_value(first)
    for n in range(MAX_REDACTED + 10):
        register_secret_value(f"value-{n:010d}")
    assert len(_REGISTRY) == MAX_REDACTED
    newest = f"value-{MAX_REDACTED + 9:010d}"
    assert redact(f"x {newest} y") == "x ********** y"
    assert first in redact(first)  # the oldest went first
