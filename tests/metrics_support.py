"""Helpers for the metrics tests: the app they scrape, and the scraped text read back."""

from __future__ import annotations

import os
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
