"""k8s/prometheus-rules.yaml: every alert fires when it should and stays quiet otherwise.

The rules are evaluated by Prometheus's own ``promtool`` (``check rules``, then ``test rules``),
installed from the distribution's ``prometheus`` package; no evaluator of ours stands in for it.
The posture alert is fed the secret age the API's ``/metrics`` actually reports for a secret file
85 days old. promtool compares annotations word for word, so the copy under test drops them (the
expressions, ``for`` and labels are the shipped ones; ``check rules`` parses the templates).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require
from tests.metrics_support import DAY, aged_secret_file, metrics_app, value

RULES = Path(__file__).resolve().parent.parent / "k8s" / "prometheus-rules.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    """The promtool binary (Debian's ``prometheus`` package)."""
    return require(shutil.which("promtool"), "promtool", "apt-get install prometheus")


def _run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False
    )


def _test_rules(promtool: str, tmp_path: Path, tests: list[dict[str, Any]]) -> None:
    """Run ``promtool test rules`` on the shipped rules (annotations dropped) and ``tests``."""
    shipped = yaml.safe_load(RULES.read_text())
    for group in shipped["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(shipped))
    (tmp_path / "tests.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    done = _run(promtool, "test", "rules", str(tmp_path / "tests.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr


def _alert(name: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": name,
        "exp_alerts": [{"exp_labels": dict(found)} for found in labels],
    }


def test_the_shipped_rules_pass_promtool_check(promtool: str) -> None:
    """`promtool check rules` accepts the file: expressions and annotation templates parse."""
    done = _run(promtool, "check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout


def test_the_age_alert_fires_on_the_age_the_api_reports(
    promtool: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, canary: str
) -> None:
    """A secret file 85 days old: /metrics says so, and the 80-day alert fires on that value."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    old = aged_secret_file(secrets, "db_password", f"{canary}-db", age_days=85)
    young = aged_secret_file(secrets, "auth0_client_secret", f"{canary}-a0", age_days=10)
    monkeypatch.setenv("DB_PASSWORD_FILE", str(old))
    monkeypatch.setenv("AUTH0_CLIENT_SECRET_FILE", str(young))
    scraped = metrics_app(monkeypatch, tmp_path).test_client().get("/metrics")
    text = scraped.get_data(as_text=True)
    assert scraped.status_code == 200 and canary not in text
    aged = value(text, "yosai_secrets_secret_age_seconds", key="DB_PASSWORD")
    fresh = value(text, "yosai_secrets_secret_age_seconds", key="AUTH0_CLIENT_SECRET")
    assert 84.9 * DAY < aged < 85.1 * DAY and 9.9 * DAY < fresh < 10.1 * DAY
    series = [
        {
            "series": f'yosai_secrets_secret_age_seconds{{job="api",key="{key}"}}',
            "values": f"{seconds:.0f}+60x40",  # a minute older every minute
        }
        for key, seconds in (("DB_PASSWORD", aged), ("AUTH0_CLIENT_SECRET", fresh))
    ]
    expected = {"job": "api", "key": "DB_PASSWORD", "severity": "warning"}
    _test_rules(
        promtool,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    _alert("YosaiSecretOlderThan80Days", "10m"),  # not yet: `for: 15m`
                    _alert("YosaiSecretOlderThan80Days", "20m", expected),
                ],
            }
        ],
    )


def test_stale_serves_for_five_minutes_fire_and_a_blip_does_not(
    promtool: str, tmp_path: Path
) -> None:
    """Stale serves growing for 5+ minutes fire; one burst of stale serves does not."""
    _test_rules(
        promtool,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": 'yosai_secrets_stale_served_total{job="api",instance="a"}',
                        "values": "0+10x20",
                    },
                    {
                        "series": 'yosai_secrets_stale_served_total{job="api",instance="b"}',
                        "values": "0 0 50 50 50 50 50 50 50 50 50 50 50",
                    },
                ],
                "alert_rule_test": [
                    _alert("YosaiSecretsServedStale", "3m"),
                    _alert(
                        "YosaiSecretsServedStale",
                        "10m",
                        {"job": "api", "instance": "a", "severity": "warning"},
                    ),
                ],
            }
        ],
    )


def test_backend_errors_over_five_percent_fire_and_not_found_does_not(
    promtool: str, tmp_path: Path
) -> None:
    """10% failed calls to vault fire; 50% not_found answers (no failure) do not."""
    calls = [
        ("vault", "ok", 90),
        ("vault", "error", 10),
        ("env", "ok", 50),
        ("env", "not_found", 50),
    ]
    series = [
        {
            "series": f'yosai_secrets_backend_requests_total{{job="api",backend="{backend}",'
            f'outcome="{outcome}"}}',
            "values": f"0+{per_minute}x30",
        }
        for backend, outcome, per_minute in calls
    ]
    _test_rules(
        promtool,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    _alert(
                        "YosaiSecretsBackendErrors",
                        "20m",
                        {"job": "api", "backend": "vault", "severity": "warning"},
                    )
                ],
            }
        ],
    )


def test_a_low_token_ttl_fires_and_a_renewed_one_does_not(promtool: str, tmp_path: Path) -> None:
    """A TTL running down under 5 minutes fires; one renewed at two thirds never does."""
    renewed = " ".join(str(3600 - 60 * (i % 40)) for i in range(30))  # 3600 down to 1260, again
    _test_rules(
        promtool,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": 'yosai_secrets_vault_token_ttl_seconds{job="api",instance="a"}',
                        "values": "1200-60x29",
                    },
                    {
                        "series": 'yosai_secrets_vault_token_ttl_seconds{job="api",instance="b"}',
                        "values": renewed,
                    },
                ],
                "alert_rule_test": [
                    _alert("YosaiSecretsVaultTokenTTLLow", "10m"),  # 600 s left: not yet
                    _alert(
                        "YosaiSecretsVaultTokenTTLLow",
                        "19m",
                        {"job": "api", "instance": "a", "severity": "critical"},
                    ),
                ],
            }
        ],
    )


def test_a_rotation_open_for_an_hour_fires(promtool: str, tmp_path: Path) -> None:
    """rotation_open at 1 for over an hour fires; at 1 for 30 minutes it does not yet."""
    _test_rules(
        promtool,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'yosai_secrets_rotation_open{job="api"}', "values": "1x90"}
                ],
                "alert_rule_test": [
                    _alert("YosaiSecretsRotationLeftOpen", "30m"),
                    _alert(
                        "YosaiSecretsRotationLeftOpen", "70m", {"job": "api", "severity": "warning"}
                    ),
                ],
            }
        ],
    )
