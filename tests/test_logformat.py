"""YOSAI_LOG_FORMAT=json: one JSON object per line from the CLI, the development server and a
gunicorn worker, with redaction applied to the message, the extra fields and tracebacks."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.metrics_support import gunicorn_environ, start_gunicorn
from tests.servers.process import free_port, stop_process
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.logformat import JsonFormatter, gunicorn_logconfig, log_format
from yosai_secrets.secret import MASK, Secret, register_secret_value

REPO_ROOT = Path(__file__).resolve().parent.parent
FIELDS = {"time", "level", "logger", "message", "pid"}


def _records(text: str) -> list[dict[str, Any]]:
    """Every non-empty line of ``text`` as JSON (a line that is not JSON fails the test)."""
    found = []
    for line in text.splitlines():
        if line.strip():
            try:
                found.append(json.loads(line))
            except ValueError:
                pytest.fail(f"not a JSON line: {line!r}")
    return found


def _record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(
        "yosai_secrets.test", logging.WARNING, __file__, 1, message, args, None
    )
    for name, item in extra.items():
        setattr(record, name, item)
    return record


def test_a_record_is_one_json_line_with_the_fields_and_extras() -> None:
    """time (UTC, ms), level, logger, message, pid, then the extra fields, on one line."""
    line = JsonFormatter().format(_record("read %s\nnext", "DB_PASSWORD", backend="vault", n=3))
    assert "\n" not in line
    document = json.loads(line)
    assert document.keys() >= FIELDS
    assert document["message"] == "read DB_PASSWORD\nnext"
    assert (document["level"], document["logger"], document["pid"]) == (
        "WARNING",
        "yosai_secrets.test",
        os.getpid(),
    )
    assert document["time"].endswith("Z") and len(document["time"]) == len(
        "2026-11-29T10:00:00.000Z"
    )
    assert (document["backend"], document["n"]) == ("vault", 3)


@pytest.mark.usefixtures("fresh_redaction")
def test_values_are_masked_in_message_extras_and_traceback(canary: str) -> None:
    """A registered value is masked wherever the record holds it, with no filter before."""
    register_secret_value(canary)
    try:
        raise RuntimeError(f"failed with {canary}")
    except RuntimeError:
        record = _record(
            "got %s",
            canary,
            held=canary,
            nested={"inner": [f"x{canary}x"]},
            wrapped=Secret("anything"),
        )
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert canary not in line
    document = json.loads(line)
    assert document["message"] == f"got {MASK}"
    assert document["held"] == MASK and document["wrapped"] == MASK
    assert document["nested"] == {"inner": [f"x{MASK}x"]}
    assert "RuntimeError: failed with" in document["exception"]


def test_an_unknown_format_is_a_clear_error() -> None:
    """YOSAI_LOG_FORMAT=xml names the variable and the valid values; unset means text."""
    assert log_format({}) == "text" and log_format({"YOSAI_LOG_FORMAT": " JSON "}) == "json"
    with pytest.raises(ConfigurationError, match=r"YOSAI_LOG_FORMAT='xml'.*text, json"):
        log_format({"YOSAI_LOG_FORMAT": "xml"})
    assert gunicorn_logconfig({}) == {}


def _cli(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    run_cli = "from yosai_secrets.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", run_cli, *args],
        env={**environ, "PYTHONPATH": str(REPO_ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _clean_environ(tmp_path: Path) -> dict[str, str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("SECRET", "YOSAI_", "AUTH0_"))
    }
    environ.update(YOSAI_CONFIG_DIR=str(tmp_path / "no-config"), YOSAI_LOG_FORMAT="json")
    return environ


def test_the_cli_logs_json_lines_and_rejects_an_unknown_format(tmp_path: Path, canary: str) -> None:
    """`yosai-secrets -v get`: stderr is JSON lines without the value; `xml` exits 2, one line."""
    environ = {**_clean_environ(tmp_path), "LOGFORMAT_TEST_KEY": canary}
    done = _cli(environ, "-v", "get", "LOGFORMAT_TEST_KEY")
    assert done.returncode == 0, done.stderr
    records = _records(done.stderr)
    assert records and all(r.keys() >= FIELDS for r in records)
    assert any(r["logger"] == "yosai_secrets.audit" for r in records)  # the read's audit event
    assert canary not in done.stderr
    refused = _cli({**environ, "YOSAI_LOG_FORMAT": "xml"}, "get", "LOGFORMAT_TEST_KEY")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: YOSAI_LOG_FORMAT='xml' is not a log format: use one of text, json"
    ]


@pytest.mark.integration  # the development server in a subprocess
def test_the_development_server_logs_json_lines(tmp_path: Path) -> None:
    """`serve` in development: werkzeug's banner and request lines come out as JSON."""
    port = free_port()
    environ = {**_clean_environ(tmp_path), "YOSAI_ENV": "development"}
    run_cli = "from yosai_secrets.cli import main; main()"
    process = subprocess.Popen(
        [sys.executable, "-c", run_cli, "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**environ, "PYTHONPATH": str(REPO_ROOT / "src")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/healthz", process)
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=20)
    records = _records(errors)
    assert all(r.keys() >= FIELDS for r in records)
    requests = [r for r in records if r["logger"] == "werkzeug" and "/healthz" in r["message"]]
    assert requests and "\x1b[" not in errors


def _wait(url: str, process: subprocess.Popen[str]) -> None:
    import time

    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, "the server exited"
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310
                return
        except OSError:
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.2)


@pytest.mark.integration  # gunicorn with two workers
def test_gunicorn_master_worker_and_access_lines_are_json_and_redacted(
    tmp_path: Path, canary: str
) -> None:
    """Under gunicorn every line is JSON; a worker logging a value shows it masked."""
    port = free_port()
    environ = gunicorn_environ(
        tmp_path,
        port,
        YOSAI_LOG_FORMAT="json",
        LOGFORMAT_CANARY=canary,
        METRICS_TEST_KEYS='["LOGFORMAT_CANARY"]',
    )
    process = start_gunicorn(tmp_path, environ, "gunicorn.log")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/log", timeout=10) as response:
            worker = json.loads(response.read())["pid"]
    finally:
        stop_process(process)
    text = (tmp_path / "gunicorn.log").read_text()
    assert canary not in text
    records = _records(text)
    assert all(r.keys() >= FIELDS for r in records)
    logged = [r for r in records if r["logger"] == "metrics_app"]
    assert len(logged) == 1 and logged[0]["pid"] == worker
    assert logged[0]["message"] == f"the value is {MASK}" and logged[0]["held"] == MASK
    assert any(r["logger"] == "gunicorn.access" and "/log" in r["message"] for r in records)
    assert any(
        r["logger"] == "gunicorn.error" and "Booting worker" in r["message"] for r in records
    )
