# The Yōsai Secrets API and its posture page, served by gunicorn.
#   docker compose up            (secrets mounted under /run/secrets; see docker-compose.yml)
# Runs in production unless YOSAI_ENV says otherwise, and refuses to start without its secrets.
# `docker kill --signal=HUP <container>` reaches gunicorn (PID 1), which replaces its workers
# gracefully: every cached secret is read again.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[flask,dashboard,vault,aws]"
# The application's configuration (no secret in it: secrets are references or come from files).
COPY config ./config

RUN useradd --system --uid 10001 --no-create-home --home-dir /app yosai
USER yosai

ENV YOSAI_BIND=0.0.0.0:8050 \
    SECRET_BACKEND=env
EXPOSE 8050
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8050/healthz', timeout=3)"]
CMD ["gunicorn", "--config", "python:yosai_secrets.api.gunicorn_conf"]
