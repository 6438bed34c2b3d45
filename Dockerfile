# The Yōsai Secrets API and its posture page, served by gunicorn.
#   docker compose up            (secrets mounted under /run/secrets; see docker-compose.yml)
#   docker build -t yosai-secrets:0.1.0 .
# Runs in production unless YOSAI_ENV says otherwise, and refuses to start without its secrets.
# `docker kill --signal=HUP <container>` reaches gunicorn (PID 1), which replaces its workers
# gracefully: every cached secret is read again.
#
# Two stages: the builder installs exactly what uv.lock pins (the extras the API needs: flask,
# dashboard, vault, aws; no dev group) into /app/.venv; the final stage holds that venv and the
# application's configuration, and nothing else: no uv, no compiler, no source tree.
#
# Base image: pinned by exact version tag (python:3.11.11-slim-bookworm) but NOT by digest, because
# no registry was reachable where this file was written and a digest we could not check would be a
# guess. Add it when you build somewhere that can see the registry:
#   docker buildx imagetools inspect python:3.11.11-slim-bookworm   (the "Digest:" line)
# then write FROM python:3.11.11-slim-bookworm@sha256:<digest> in both stages.

FROM python:3.11.11-slim-bookworm AS builder

# The same uv as the Makefile's UV_VERSION.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

# Bytecode compiled here, because the final image's filesystem is read-only in Kubernetes; the
# venv uses the base image's interpreter, which the final stage has at the same path.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /src
# Dependencies first (a layer that changes only with uv.lock), then the project itself, installed
# as a wheel (--no-editable) so that the venv does not point back at /src.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project \
        --extra flask --extra dashboard --extra vault --extra aws
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable \
        --extra flask --extra dashboard --extra vault --extra aws


FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/app/.venv \
    PATH=/app/.venv/bin:$PATH

# A numeric uid/gid, so that Kubernetes can check runAsNonRoot without resolving a name.
RUN groupadd --system --gid 10001 yosai \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /app yosai

WORKDIR /app
# Owned by root and not writable by the service user.
COPY --from=builder /app/.venv /app/.venv
# The application's configuration (no secret in it: secrets are references or come from files).
COPY config ./config

USER 10001:10001

# SECRET_BACKEND names the backend that holds the secrets (env, vault, aws), not a secret: DL3064
# matches on the word SECRET in the name.
# hadolint ignore=DL3064
ENV YOSAI_BIND=0.0.0.0:8050 \
    SECRET_BACKEND=env
EXPOSE 8050
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8050/healthz', timeout=3)"]
CMD ["gunicorn", "--config", "python:yosai_secrets.api.gunicorn_conf"]
