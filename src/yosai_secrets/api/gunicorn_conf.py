"""gunicorn settings for the API (``gunicorn -c python:yosai_secrets.api.gunicorn_conf``).

``yosai-secrets serve`` (outside development) and the Docker image use these. Each worker loads
the app itself (no ``preload_app``), so each has its own caches and its own SIGHUP handler: a HUP
sent to a worker clears its caches; a HUP sent to the master makes gunicorn replace every worker
gracefully, and the new ones start with empty caches.

Environment: ``YOSAI_BIND`` (default ``127.0.0.1:8050``; the Docker image binds ``0.0.0.0:8050``),
``WEB_CONCURRENCY`` (workers, default 2), ``GUNICORN_THREADS`` (threads per worker, default 4),
``PROMETHEUS_MULTIPROC_DIR`` (the metrics of every worker in ``/metrics``: the hooks below empty it
at start-up, start each worker's copier, copy once more at a worker's exit and drop a dead worker's
live gauges), ``YOSAI_LOG_FORMAT=json`` (gunicorn's own lines as JSON too).
"""

from __future__ import annotations

import os
from typing import Any as _Any

from ..envvars import env_int as _env_int
from ..logformat import gunicorn_logconfig as _gunicorn_logconfig

wsgi_app = "yosai_secrets.api:create_app()"
bind = [os.environ.get("YOSAI_BIND", "127.0.0.1:8050")]
workers = _env_int(os.environ, "WEB_CONCURRENCY", 2, minimum=1)
threads = _env_int(os.environ, "GUNICORN_THREADS", 4, minimum=1)
worker_class = "gthread"
preload_app = False
# Heartbeat files in memory: /tmp may be read-only (Kubernetes readOnlyRootFilesystem) or on disk.
_SHM = "/dev/shm"  # noqa: S108 - gunicorn makes its heartbeat files there with mkstemp
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None
timeout = 30
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
# The access log records the request line, never headers: a bearer token never reaches it.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
limit_request_field_size = 16384
logconfig_dict = _gunicorn_logconfig(os.environ)
# Recent gunicorn opens a control socket under $HOME by default; the service has no use for it.
control_socket_disable = True


# -- the metrics of every worker (PROMETHEUS_MULTIPROC_DIR; see yosai_secrets.metrics_export) ----


def on_starting(server: _Any) -> None:
    """In the master, before any worker: empty the directory of a previous run's counts."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if not directory:
        return
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))


def post_worker_init(worker: _Any) -> None:
    """In each worker, its app loaded: start copying its counters to the shared files."""
    from ..errors import MissingDependencyError
    from ..metrics_export import multiprocess_mode, start_mirror

    if multiprocess_mode():
        try:
            start_mirror()
        except MissingDependencyError as exc:  # /metrics says so too; the API itself works
            worker.log.warning("metrics: %s", exc)


def worker_exit(server: _Any, worker: _Any) -> None:
    """In a worker that exits: copy its counters one last time."""
    from ..metrics_export import stop_mirror

    stop_mirror()


def child_exit(server: _Any, worker: _Any) -> None:
    """In the master, a worker gone: drop its live gauges (its counters stay counted)."""
    from ..metrics_export import mark_process_dead

    mark_process_dead(worker.pid)
