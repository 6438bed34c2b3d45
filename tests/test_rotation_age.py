"""`yosai-secrets status` and the posture page tell one story: same keys, ages and verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from yosai_secrets import rotation_age
from yosai_secrets.api import posture as posture_module
from yosai_secrets.cli import cli
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.rotation import policy as rotation_policy
from yosai_secrets.rotation_age import aged_keys, judge, max_age_days, rotated_keys

REPO_ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age", "due", "state"),
    [
        (timedelta(0), 90, "ok"),
        (timedelta(seconds=1), 90, "ok"),
        (timedelta(hours=23), 90, "ok"),
        (timedelta(days=30, hours=1), 60, "ok"),
        (timedelta(days=81, hours=1), 9, "due-soon"),
        (timedelta(days=90), 0, "due-soon"),
        (timedelta(days=100, seconds=5), -10, "overdue"),
        (timedelta(days=-1), 90, "ok"),
    ],
)
def test_days_until_due_count_a_started_day_as_left(age: timedelta, due: int, state: str) -> None:
    """Rotated just now: due in 90 days (not 89); 100 days ago: -10; the last tenth: due-soon."""
    verdict = judge("SECRET_KEY", "file", NOW - age, NOW, 90)
    assert (verdict.days_until_due, verdict.state) == (due, state)


def test_never_rotated_is_unknown_and_failing() -> None:
    """A secret with no rotation record anywhere is unknown, which status counts as failing."""
    verdict = judge("DB_PASSWORD", None, None, NOW, 90)
    assert (verdict.state, verdict.age_days, verdict.days_until_due) == ("unknown", None, None)
    assert verdict.failing


def test_one_policy_default_and_reader() -> None:
    """The 90-day default and the ROTATION_MAX_AGE_DAYS reader exist once, for all."""
    assert rotation_policy.DEFAULT_MAX_AGE_DAYS is rotation_age.DEFAULT_MAX_AGE_DAYS == 90
    assert posture_module.DEFAULT_MAX_AGE_DAYS is rotation_age.DEFAULT_MAX_AGE_DAYS
    assert rotation_policy.max_age_days is posture_module.max_age_days is max_age_days
    assert max_age_days({}) == 90
    assert max_age_days({"ROTATION_MAX_AGE_DAYS": " 30 "}) == 30
    assert max_age_days({"ROTATION_MAX_AGE_DAYS": "30"}, override=7) == 7
    with pytest.raises(ConfigurationError, match="ROTATION_MAX_AGE_DAYS='ninety' is not a whole"):
        max_age_days({"ROTATION_MAX_AGE_DAYS": "ninety"})
    with pytest.raises(ConfigurationError, match="ROTATION_MAX_AGE_DAYS='0' must be"):
        max_age_days({"ROTATION_MAX_AGE_DAYS": "0"})
    with pytest.raises(ConfigurationError, match="at least 1 day"):
        max_age_days({}, override=0)


def test_the_policy_covers_the_keys_rotation_generates() -> None:
    """rotate generates SECRET_KEY and every *PASSWORD key; the Auth0 settings are not generated."""
    assert rotated_keys(["AUTH0_CLIENT_SECRET", "DB_PASSWORD", "SECRET_KEY", "REDIS_PASSWORD"]) == [
        "SECRET_KEY",
        "DB_PASSWORD",
        "REDIS_PASSWORD",
    ]


def test_the_policy_ages_the_auth0_client_secret_too() -> None:
    """Ages are judged for the generated keys and AUTH0_CLIENT_SECRET, not the other Auth0 ones."""
    names = ["AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "DB_PASSWORD", "SECRET_KEY", "AUTH0_DOMAIN"]
    assert aged_keys(names) == ["SECRET_KEY", "DB_PASSWORD", "AUTH0_CLIENT_SECRET"]


def test_the_posture_page_does_not_load_the_rotation_package() -> None:
    """Importing the posture module and judging with the env backend loads no rotation module."""
    code = (
        "import sys\n"
        "from yosai_secrets.api.posture import StoreRotationInfo, max_age_days, posture\n"
        "from yosai_secrets.manager import SecretManager\n"
        "rows = posture(SecretManager(environ={}), environment='test', max_age=max_age_days({}),\n"
        "               rotation_info=StoreRotationInfo({}))\n"
        "loaded = [m for m in sys.modules if m == 'yosai_secrets.rotation'\n"
        "          or m.startswith('yosai_secrets.rotation.')]\n"
        "print(len(rows), loaded)\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "SECRETS_DIR": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "6 []"


@pytest.fixture
def fresh_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh clone after `make run`: development, the shipped config, secrets/ generated."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOSAI_ENV", "development")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(REPO_ROOT / "config"))
    result = CliRunner().invoke(cli, ["dev-secrets"])
    assert result.exit_code == 0, result.output
    return tmp_path


def _status() -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["status", "--json"])
    return result.exit_code, json.loads(result.output)


def _page_rows() -> dict[str, dict[str, Any]]:
    """The rows the posture page draws (the same document as GET /api/secrets)."""
    from yosai_secrets.api import create_app
    from yosai_secrets.api.routes import secrets_posture
    from yosai_secrets.flask import current_extension

    app = create_app({"YOSAI_SIGHUP": False, "YOSAI_DASHBOARD": False})
    with app.app_context():
        document = secrets_posture(current_extension(app))
    return {row["name"]: row for row in document["secrets"]}


def _agree(report: dict[str, Any], rows: dict[str, dict[str, Any]]) -> None:
    """Every key status reports is judged on the page with the same age, due date and verdict."""
    for entry in report["secrets"]:
        row = rows[entry["key"]]
        assert (row["age_days"], row["days_until_due"], row["state"]) == (
            entry["age_days"],
            entry["days_until_due"],
            entry["state"],
        )
    judged = {name for name, row in rows.items() if row["days_until_due"] is not None}
    assert judged == {entry["key"] for entry in report["secrets"]}


def test_fresh_clone_status_reports_what_the_page_shows(fresh_clone: Path) -> None:
    """After `make run`, status exits 0 with the generated files' ages, as the page shows them."""
    code, report = _status()
    assert code == 0, report
    seen = [(s["key"], s["source"], s["state"], s["days_until_due"]) for s in report["secrets"]]
    assert seen == [("SECRET_KEY", "file", "ok", 90), ("DB_PASSWORD", "file", "ok", 90)]
    rows = _page_rows()
    _agree(report, rows)
    # Not set in a fresh clone: missing on the page, and not a key status reports.
    assert rows["AUTH0_CLIENT_SECRET"]["state"] == "missing"
    assert rows["AUTH0_CLIENT_SECRET"]["days_until_due"] is None


def test_a_set_auth0_client_secret_is_judged_by_both(
    fresh_clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once AUTH0_CLIENT_SECRET is set, status and the page both judge it (unknown: no record)."""
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", "a-real-client-secret-" + "z" * 24)
    code, report = _status()
    assert code == 1
    by_key = {s["key"]: s for s in report["secrets"]}
    assert by_key["AUTH0_CLIENT_SECRET"]["state"] == "unknown"
    row = _page_rows()["AUTH0_CLIENT_SECRET"]
    assert (row["state"], row["age_days"], row["days_until_due"]) == ("unknown", None, None)


def test_a_placeholder_auth0_client_secret_is_not_set(
    fresh_clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example's replace-me value is not set: missing on the page, not judged by status."""
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", "replace-me-auth0-client-secret")
    code, report = _status()
    assert code == 0, report
    assert "AUTH0_CLIENT_SECRET" not in {s["key"] for s in report["secrets"]}
    row = _page_rows()["AUTH0_CLIENT_SECRET"]
    assert (row["state"], row["detail"]) == (
        "missing",
        "not set (it holds the example's placeholder)",
    )


def test_an_old_file_is_overdue_in_both(fresh_clone: Path) -> None:
    """A secret file 100 days old is overdue by 10 days in status and on the page alike."""
    old = time.time() - 100 * 86400
    os.utime(fresh_clone / "secrets" / "db_password.txt", (old, old))
    code, report = _status()
    assert code == 1
    by_key = {s["key"]: s for s in report["secrets"]}
    assert (by_key["DB_PASSWORD"]["state"], by_key["DB_PASSWORD"]["days_until_due"]) == (
        "overdue",
        -10,
    )
    _agree(report, _page_rows())


def test_status_without_any_record_says_never_rather_than_nothing_to_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no manifest, no store and no file, status lists the keys as never rotated (exit 1)."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 1, result.output
    assert "never" in result.output and "SECRET_KEY" in result.output
    assert "nothing to report" not in result.output


def _texts(node: Any, out: list[str]) -> list[str]:
    """Every text child of a Dash layout, in order."""
    if isinstance(node, dict):
        props = node.get("props", {})
        if isinstance(props.get("children"), str):
            out.append(props["children"])
        for value in props.values():
            _texts(value, out)
    elif isinstance(node, list):
        for item in node:
            _texts(item, out)
    return out


def test_the_page_shows_due_dates_only_where_the_policy_applies(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On the page fresh SECRET_KEY and AUTH0_CLIENT_SECRET are due in 90; a client id has "-"."""
    pytest.importorskip("dash")
    from yosai_secrets.api import create_app
    from yosai_secrets.api.posture import RotationInfo

    monkeypatch.setenv("YOSAI_ENV", "development")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(tmp_path / "no-config"))
    monkeypatch.setenv("SECRET_KEY", "k" * 48)
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", "a" * 32)
    monkeypatch.setenv("AUTH0_CLIENT_ID", "client-" + "i" * 16)
    rotated = datetime.now(UTC)

    def info(name: str, manager: object) -> RotationInfo | None:
        wanted = ("KEY", "SECRET", "CLIENT_ID")
        return RotationInfo(last_rotated=rotated) if name.endswith(wanted) else None

    app = create_app({"YOSAI_SIGHUP": False, "YOSAI_ROTATION_INFO": info})
    texts = _texts(app.test_client().get("/dashboard/_dash-layout").get_json(), [])
    key = texts.index("SECRET_KEY")
    auth0 = texts.index("AUTH0_CLIENT_SECRET")
    client_id = texts.index("AUTH0_CLIENT_ID")
    assert texts[key + 3 : key + 6] == ["ok", "0", "90"]
    assert texts[auth0 + 3 : auth0 + 6] == ["ok", "0", "90"]
    assert texts[client_id + 3 : client_id + 6] == ["ok", "0", "-"]


def test_status_judges_the_manifests_auth0_client_secret_once_it_is_real(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example's placeholder is not judged; a real AUTH0_CLIENT_SECRET is, by its annotation."""
    from tests.rotation_support import make_manifest
    from yosai_secrets.rotation.manifest import SecretManifest

    monkeypatch.chdir(tmp_path)
    path = make_manifest(tmp_path)
    keys = [s["key"] for s in json.loads(_status_of(path)[1])["secrets"]]
    assert keys == ["SECRET_KEY", "DB_PASSWORD"]
    manifest = SecretManifest(path)
    manifest.set("AUTH0_CLIENT_SECRET", "issued-by-auth0-" + "x" * 32)
    manifest.set_annotation("AUTH0_CLIENT_SECRET", "2020-01-01T00:00:00Z")
    manifest.save()
    code, out = _status_of(path)
    by_key = {s["key"]: s for s in json.loads(out)["secrets"]}
    assert code == 1 and by_key["AUTH0_CLIENT_SECRET"]["state"] == "overdue"
    assert by_key["AUTH0_CLIENT_SECRET"]["source"] == "manifest"
    assert "issued-by-auth0" not in out


def _status_of(manifest: Path) -> tuple[int, str]:
    """Run `status --json` on ``manifest``: (exit code, output)."""
    result = CliRunner().invoke(cli, ["status", "--manifest", str(manifest), "--json"])
    return result.exit_code, result.output
