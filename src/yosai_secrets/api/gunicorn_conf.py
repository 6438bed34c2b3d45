"""gunicorn settings for the API (``gunicorn -c python:yosai_secrets.api.gunicorn_conf``).

``yosai-secrets serve`` (outside development) and the Docker image use these. Each worker loads
the app itself (no ``preload_app``), so each has its own caches and its own SIGHUP handler: a HUP
sent to a worker clears its caches; a HUP sent to the master makes gunicorn replace every worker
gracefully, and the new ones start with empty caches.

Environment: ``YOSAI_BIND`` (default ``127.0.0.1:8050``; the Docker image binds ``0.0.0.0:8050``),
``WEB_CONCURRENCY`` (workers, default 2), ``GUNICORN_THREADS`` (threads per worker, default 4).
"""

from __future__ import annotations

import os

from ..envvars import env_int as _env_int

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
# Recent gunicorn opens a control socket under $HOME by default; the service has no use for it.
control_socket_disable = True
