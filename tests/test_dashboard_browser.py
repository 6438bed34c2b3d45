"""The posture page in a real headless Chromium (Debian's, driven by Playwright; no download).

The screenshot is saved as ``test-artifacts/dashboard.png`` at the repository root.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import require
from yosai_secrets.api import create_app
from yosai_secrets.api.posture import RotationInfo
from yosai_secrets.manager import SecretManager

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = os.environ.get("YOSAI_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach Google, which this
# machine's closed network refuses; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# A real browser and an HTTP server: slow, and an integration test.
pytestmark = [pytest.mark.slow, pytest.mark.integration]

AGES = {"SECRET_KEY": 120, "DB_PASSWORD": 35}


def _rotation_info(name: str, manager: SecretManager) -> RotationInfo | None:
    days = AGES.get(name)
    if days is None:
        return None
    return RotationInfo(last_rotated=datetime.now(UTC) - timedelta(days=days, hours=2))


@pytest.fixture
def chromium() -> str:
    """The Chromium executable (a missing one is a skip, or a failure under CI)."""
    found = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    return require(found, "Debian's chromium", "run scripts/install-system-deps.sh")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, canary: str) -> Iterator[str]:
    """The API in development, on a free 127.0.0.1 port in a thread; yields its base address."""
    monkeypatch.setenv("YOSAI_ENV", "development")
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(tmp_path / "no-config"))
    monkeypatch.setenv("YOSAI_LOCAL_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.setenv("SECRET_KEY", f"{canary}-secret-key-0123456789")
    monkeypatch.setenv("DB_PASSWORD", f"{canary}-db-password")
    monkeypatch.setenv("AUTH0_DOMAIN", "yosai-test.eu.auth0.com")
    app = create_app({"YOSAI_SIGHUP": False, "YOSAI_ROTATION_INFO": _rotation_info})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_posture_page_in_headless_chromium(chromium: str, served: str, canary: str) -> None:
    """The page lists every secret with its state and age, draws the chart, shows no value."""
    require(
        importlib.util.find_spec("playwright"),
        "playwright",
        "the dev group of pyproject.toml: make venv",
    )
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=CHROMIUM_ARGS,
            headless=True,
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            failed: list[str] = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.goto(f"{served}/dashboard/", wait_until="networkidle", timeout=60_000)
            page.wait_for_selector("#posture-table tbody tr", timeout=30_000)
            page.wait_for_selector("#age-chart .main-svg", timeout=30_000)
            rows = page.locator("#posture-table tbody tr")
            found = {}
            for index in range(rows.count()):
                cells = rows.nth(index).locator("td").all_inner_texts()
                found[cells[0]] = cells
            assert list(found) == [
                "SECRET_KEY",
                "DB_PASSWORD",
                "AUTH0_CLIENT_ID",
                "AUTH0_CLIENT_SECRET",
                "AUTH0_DOMAIN",
                "AUTH0_AUDIENCE",
            ]
            assert found["SECRET_KEY"][3] == "overdue"
            assert found["SECRET_KEY"][4] == "120.1"
            assert found["DB_PASSWORD"][3] == "ok"
            assert found["DB_PASSWORD"][5] == "55"  # 35 days 2 hours old: 54.9 days left
            assert found["AUTH0_CLIENT_SECRET"][3] == "missing"
            assert found["AUTH0_DOMAIN"][3] == "ok"
            assert "90-day policy" in page.locator("#age-chart").inner_text()
            time.sleep(0.3)  # let Plotly finish its transition before the picture
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            assert canary not in page.content()
            assert not [url for url in failed if url.startswith(served)], failed
        finally:
            browser.close()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
