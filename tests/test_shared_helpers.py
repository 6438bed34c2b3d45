"""Each shared helper exists once: the mask, the fallback-list format and the number readers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from yosai_secrets import fallbacks, flask, secret
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.fallbacks import format_fallbacks, parse_fallbacks
from yosai_secrets.rotation import generate, report

SRC = Path(__file__).resolve().parent.parent / "src" / "yosai_secrets"


def test_one_mask() -> None:
    """The rotation report masks with the library's MASK, and no module defines another."""
    assert report.MASK is secret.MASK
    defined = [
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if re.search(r"^MASK\b.*=", path.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert defined == ["secret.py"]


def test_one_fallbacks_parser_and_writer() -> None:
    """Flask and rotation use the one parser and writer of yosai_secrets.fallbacks."""
    assert flask.parse_fallbacks is fallbacks.parse_fallbacks
    assert generate.parse_fallbacks is fallbacks.parse_fallbacks
    assert generate.format_fallbacks is fallbacks.format_fallbacks
    assert generate.FALLBACKS_KEY is fallbacks.FALLBACKS_KEY


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('["k1", "k2"]', ["k1", "k2"]),
        ('[" k1 ", "", "k1"]', ["k1"]),
        ("[]", []),
        ("single-old-key", ["single-old-key"]),
        ("k1, k2", ["k1", "k2"]),
        ("k1\nk2\n", ["k1", "k2"]),
        ("k1,,k1", ["k1"]),
    ],
)
def test_the_documented_format(raw: str, expected: list[str]) -> None:
    """A JSON list is read as is; any other string is comma- or newline-separated keys."""
    assert parse_fallbacks(raw) == expected


@pytest.mark.parametrize("raw", ['["unclosed', '["a"] ["b"]', '["a", 1]', "[null]"])
def test_json_that_is_not_a_list_of_strings_is_refused(raw: str) -> None:
    """A value that starts with '[' must be a JSON list of strings, never guessed at."""
    with pytest.raises(ConfigurationError, match="SECRET_KEY_FALLBACKS"):
        parse_fallbacks(raw)


def test_what_rotation_writes_the_app_reads() -> None:
    """format_fallbacks writes a JSON list that parse_fallbacks reads back, without repeats."""
    stored = format_fallbacks(["new", "old", "new", ""])
    assert stored == '["new", "old"]'
    assert parse_fallbacks(stored) == ["new", "old"]
    assert parse_fallbacks(format_fallbacks(["a,b"])) == ["a,b"]


def _number_parses(tree: ast.AST) -> list[int]:
    """Line numbers of int(...) or float(...) calls whose argument reads the environment."""
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"int", "float"}
            and node.args
            and re.search(r"environ|getenv", ast.unparse(node.args[0]))
        ):
            lines.append(node.lineno)
    return lines


def test_no_environment_number_is_parsed_by_hand() -> None:
    """Every number read from the environment goes through yosai_secrets.envvars."""
    found = {
        path.relative_to(SRC).as_posix(): lines
        for path in SRC.rglob("*.py")
        if path.name != "envvars.py"
        and (lines := _number_parses(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert found == {}


def test_gunicorn_numbers_are_read_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """WEB_CONCURRENCY and GUNICORN_THREADS are whole numbers >= 1, named when wrong."""
    import importlib

    from yosai_secrets.api import gunicorn_conf

    try:
        monkeypatch.setenv("WEB_CONCURRENCY", "3")
        monkeypatch.setenv("GUNICORN_THREADS", "")
        assert (importlib.reload(gunicorn_conf).workers, gunicorn_conf.threads) == (3, 4)
        monkeypatch.setenv("WEB_CONCURRENCY", "many")
        with pytest.raises(ConfigurationError, match="WEB_CONCURRENCY='many' is not a whole"):
            importlib.reload(gunicorn_conf)
        monkeypatch.delenv("WEB_CONCURRENCY")
        monkeypatch.setenv("GUNICORN_THREADS", "0")
        with pytest.raises(ConfigurationError, match="GUNICORN_THREADS='0' must be"):
            importlib.reload(gunicorn_conf)
    finally:
        monkeypatch.undo()
        importlib.reload(gunicorn_conf)


def test_aws_max_attempts_and_cache_ttl_use_the_shared_readers() -> None:
    """AWS_MAX_ATTEMPTS (unset: botocore decides) and SECRET_CACHE_TTL read like the rest."""
    from yosai_secrets.backends.aws_settings import AwsSettings
    from yosai_secrets.manager import SecretManager
    from yosai_secrets.testing import MemoryBackend

    assert AwsSettings.from_environ({}).max_attempts is None
    assert AwsSettings.from_environ({"AWS_MAX_ATTEMPTS": " 4 "}).max_attempts == 4
    with pytest.raises(ConfigurationError, match=r"AWS_MAX_ATTEMPTS='0' must be .* >= 1"):
        AwsSettings.from_environ({"AWS_MAX_ATTEMPTS": "0"})
    with pytest.raises(ConfigurationError, match=r"e\.g\. 1"):
        AwsSettings.from_environ({"AWS_MAX_ATTEMPTS": "x"})
    manager = SecretManager(MemoryBackend({}), environ={"SECRET_CACHE_TTL": "30s"})
    assert "SecretManager" in repr(manager)
    with pytest.raises(ConfigurationError, match=r"SECRET_CACHE_TTL='-1' must be"):
        SecretManager(MemoryBackend({}), environ={"SECRET_CACHE_TTL": "-1"})
