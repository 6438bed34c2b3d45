"""Helpers for the metrics tests: the app they scrape, and the scraped text read back."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from flask import Flask

from yosai_secrets.api import create_app

#: Seconds in a day.
DAY = 86400.0


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of an exposition text, read by prometheus_client's own parser.

    Keyed by (sample name, sorted labels).
    """
    from prometheus_client.parser import text_string_to_metric_families

    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    """The one sample ``name{labels}`` of ``text`` (KeyError naming it when absent)."""
    key = (name, tuple(sorted(labels.items())))
    found = samples(text)
    if key not in found:
        raise KeyError(f"{name}{labels} not in the scrape: {sorted(found)}")
    return found[key]


def aged_secret_file(directory: Path, name: str, content: str, age_days: float) -> Path:
    """A 0600 secret file whose modification time (its rotation stamp) is ``age_days`` old."""
    path = directory / name
    path.write_text(content)
    path.chmod(0o600)
    stamp = time.time() - age_days * DAY
    os.utime(path, (stamp, stamp))
    return path


def metrics_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **config: object) -> Flask:
    """The API in the test environment, with no configuration files and a SECRET_KEY."""
    monkeypatch.setenv("YOSAI_ENV", "test")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(tmp_path / "no-config"))
    monkeypatch.setenv("SECRET_KEY", "m" * 20 + os.urandom(16).hex())
    return create_app({"TESTING": True, "YOSAI_SIGHUP": False, "YOSAI_DASHBOARD": False, **config})


#: The app the gunicorn tests serve: the API, plus a route reading METRICS_TEST_KEYS.
GUNICORN_APP = '''
"""The API under gunicorn, with a route that reads the keys METRICS_TEST_KEYS names."""
import json
import logging
import os
import time

from yosai_secrets import get_secret
from yosai_secrets.api import create_app

KEYS = json.loads(os.environ.get("METRICS_TEST_KEYS", "[]"))
app = create_app({"YOSAI_DASHBOARD": False})


@app.get("/read")
def read():
    for key in KEYS:
        get_secret(key)
    time.sleep(0.005)  # a busy worker: the other one gets its share of the connections
    return {"pid": os.getpid(), "reads": len(KEYS)}


@app.get("/missing")
def missing():
    return {"pid": os.getpid(), "value": get_secret("METRICS_TEST_NOT_SET", default="")}


@app.get("/log")
def log():
    value = get_secret(KEYS[0])
    logging.getLogger("metrics_app").warning("the value is %s", value, extra={"held": value})
    return {"pid": os.getpid()}
'''


def gunicorn_environ(tmp_path: Path, port: int, **more: str) -> dict[str, str]:
    """The environment of a gunicorn test: no inherited SECRET/YOSAI/AUTH0/PROMETHEUS settings."""
    import sys

    (tmp_path / "metrics_app.py").write_text(GUNICORN_APP)
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECRET", "YOSAI_", "AUTH0_", "PROMETHEUS", "METRICS_"))
    }
    environ.update(
        YOSAI_ENV="test",
        YOSAI_CONFIG_DIR=str(tmp_path / "no-config"),
        SECRET_KEY="g" * 20 + os.urandom(16).hex(),
        YOSAI_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="2",
        PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]),
    )
    environ.update(more)
    return environ


def start_gunicorn(
    tmp_path: Path, environ: dict[str, str], log_name: str
) -> subprocess.Popen[bytes]:
    """gunicorn with the shipped settings (hooks included) serving GUNICORN_APP; stderr to a file.

    Returns once ``/healthz`` answers (the caller stops it with ``stop_process``).
    """
    import sys
    import urllib.request

    command = [sys.executable, "-m", "gunicorn", "-c", "python:yosai_secrets.api.gunicorn_conf"]
    with (tmp_path / log_name).open("wb") as sink:
        process = subprocess.Popen(
            [*command, "metrics_app:app"],
            cwd=tmp_path,
            env=environ,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    address = environ["YOSAI_BIND"]
    while True:
        assert process.poll() is None, (tmp_path / log_name).read_text()
        try:
            with urllib.request.urlopen(f"http://{address}/healthz", timeout=2):
                return process
        except OSError:
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
