"""GET /readyz latency with a warm cache: the check alone, in-process, and over HTTP (gunicorn).

Run from the repository root: ``.venv/bin/python bench/readyz.py``. Production, the six secrets
in environment variables (throw-away values), one gunicorn worker on a free loopback port, a
keep-alive client. Prints p50/p99 of each layer, so the cost of the check itself can be seen
beside what Flask and the HTTP server add.
"""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from results import Report

N = 2000


def _p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1e6
    return f"p50 {_p50(ordered):8.1f} µs   p99 {p99:8.1f} µs"


def _time(call: Callable[[], object], n: int = N) -> list[float]:
    for _ in range(50):
        call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def _environ(config_dir: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("YOSAI_", "SECRET"))}
    environ.update(
        YOSAI_ENV="production",
        YOSAI_CONFIG_DIR=config_dir,
        SECRET_KEY=secrets.token_urlsafe(48),
        DB_PASSWORD=secrets.token_urlsafe(24),
        AUTH0_CLIENT_ID="bench-client",
        AUTH0_CLIENT_SECRET=secrets.token_urlsafe(24),
        AUTH0_DOMAIN="bench.eu.auth0.com",
        AUTH0_AUDIENCE="https://bench.api/",
    )
    return environ


def main() -> None:
    """Measure and print."""
    config_dir = tempfile.mkdtemp(prefix="yosai-bench-")
    environ = _environ(config_dir)
    os.environ.update(environ)
    from yosai_secrets.api import create_app
    from yosai_secrets.api.posture import unresolvable
    from yosai_secrets.environments import required_secrets
    from yosai_secrets.flask import current_extension

    app = create_app({"YOSAI_SIGHUP": False, "YOSAI_DASHBOARD": False})
    ext = current_extension(app)
    names = list(required_secrets("production"))
    report = Report("readyz", "GET /readyz with a warm cache (bench/readyz.py)")
    report.print(f"GET /readyz, production, 6 required secrets from env, warm cache, {N} requests")
    check = _time(lambda: unresolvable(ext.manager, names))
    report.print(f"  readiness check alone      {_percentiles(check)}")
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    flask = _time(lambda: client.get("/readyz"))
    report.print(f"  Flask test client          {_percentiles(flask)}")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from yosai_secrets.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        deadline = time.monotonic() + 30
        while True:
            try:
                connection.request("GET", "/readyz")
                connection.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                connection.close()
                time.sleep(0.1)

        def over_http() -> None:
            connection.request("GET", "/readyz")
            response = connection.getresponse()
            response.read()
            assert response.status == 200

        over_http_samples = _time(over_http)
        report.print(f"  HTTP, gunicorn, keep-alive {_percentiles(over_http_samples)}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    check_p50 = _p50(check)
    for label, samples in (("Flask test client", flask), ("HTTP, gunicorn", over_http_samples)):
        share = 100 * check_p50 / _p50(samples)
        report.ratio(f"the check's share of a request, p50 ({label})", share, unit="%", digits=0)
    report.save()


if __name__ == "__main__":
    main()
