"""``yosai-secrets serve``: run the API and its posture page."""

from __future__ import annotations

import os

import click

from ..environments import current_environment


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8050, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="gunicorn workers (default: WEB_CONCURRENCY, else 2); not used in development.",
)
def serve(host: str, port: int, workers: int | None) -> None:
    """Run the API: the development server in development, gunicorn otherwise.

    In development, missing local secrets (secrets/*.txt) are generated first. The app is built
    once before serving, so a missing secret stops the command with one clear line.
    """
    from ..api.server import port_in_use

    # Before anything else (generated secrets, the app), so that this is the one line shown.
    if port_in_use(host, port):
        _refuse_busy_port(host, port)
    env = current_environment(os.environ)
    if env == "development":
        _serve_development(host, port)
    else:
        _serve_gunicorn(env, host, port, workers)


def _refuse_busy_port(host: str, port: int) -> None:
    other = port + 1 if port < 65535 else port - 1
    click.secho(
        f"error: port {port} on {host} is already in use by another program; pick another "
        f"port: PORT={other} make run, or yosai-secrets serve --port {other}",
        fg="red",
        err=True,
    )
    click.get_current_context().exit(2)


def _serve_development(host: str, port: int) -> None:
    """Generate the missing local secrets, then run Flask's server (threaded, no reloader)."""
    from ..api import create_app
    from ..api.server import plain_werkzeug_log
    from ..devsecrets import ensure_dev_secrets

    for path in ensure_dev_secrets(os.environ.get("YOSAI_LOCAL_SECRETS_DIR") or "secrets"):
        click.echo(f"generated {path} (mode 0600)")
    # Built before anything listens, so a missing secret stops the command with our one-line error.
    app = create_app()
    _announce("development", "development server", host, port)
    plain_werkzeug_log()
    app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)


def _serve_gunicorn(env: str, host: str, port: int, workers: int | None) -> None:
    from ..api import create_app
    from ..api.server import run_gunicorn
    from ..manager import reset_default_manager

    # Build the app once before anything listens, so a missing secret stops the command with our
    # one-line error here rather than in every worker gunicorn would start.
    create_app({"YOSAI_SIGHUP": False, "YOSAI_DASHBOARD": False})
    # gunicorn forks its workers from this process (again on every HUP): they must not
    # inherit the values this check cached, or a HUP would not make them read afresh.
    reset_default_manager()
    _announce(env, "gunicorn", host, port)
    run_gunicorn(host, port, workers)


def _announce(env: str, server: str, host: str, port: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    address = f"http://{shown}:{port}/"
    click.echo(f"Yōsai Secrets API ({env}, {server}) on {address}")
    click.echo(f"posture page: {address}dashboard/   health: {address}healthz")
