# The two commands of the README: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
UV_VERSION := 0.13.9
HOST ?= 127.0.0.1
PORT ?= 8050
LINT_PATHS := src tests bench $(wildcard scripts services config)

.PHONY: run test test-fast venv lint lint-deploy typecheck security pytest bench lock clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"

# Installs exactly what uv.lock pins: every extra and the dev group (test servers included).
$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --inexact --all-extras --group dev --quiet
	touch $@

venv: $(VENV)/.installed

# The main job on the embedded default: development, the env backend, local secrets/ files
# (generated on first run), then the API and its posture page on http://$(HOST):$(PORT)/.
run: venv
	YOSAI_ENV=development $(BIN)/yosai-secrets dev-secrets
	YOSAI_ENV=development $(BIN)/yosai-secrets check
	YOSAI_ENV=development $(BIN)/yosai-secrets serve --host $(HOST) --port $(PORT)

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

# The Dockerfile (hadolint) and every Kubernetes object under k8s/ (kubernetes-validate, offline,
# strict: an unknown field fails). Only files with a top-level apiVersion are Kubernetes objects (a
# Prometheus rules file is not); a custom resource without a bundled schema is warned about, not
# failed. The git-ignored api-secrets.yaml holds real values and is not ours to lint.
K8S_MANIFESTS = $(sort $(shell grep -rlE --include='*.yaml' --include='*.yml' --exclude='api-secrets.yaml' '^apiVersion:' k8s))

lint-deploy: venv
	$(BIN)/hadolint --no-color Dockerfile
	$(BIN)/kubernetes-validate --strict --quiet $(K8S_MANIFESTS)

typecheck: venv
	$(BIN)/mypy

# Static security gates: ruff's bandit rules (S) on the library; a secret scan of every tracked
# file, twice: detect-secrets against the reviewed .secrets.baseline, and our own scan (credential
# shapes, and the values of the development secrets when `make run` has generated them); pip-audit
# on the locked dependencies (skipped with a NOTICE on stderr when its database cannot be reached,
# never silently).
# S603/S607 stay off as in pyproject.toml (every subprocess call passes a fixed argument list).
security: venv
	$(BIN)/ruff check --select S --ignore S603,S607 src
	$(BIN)/python scripts/secret_scan_gate.py
	YOSAI_ENV=development $(BIN)/yosai-secrets scan $(shell git ls-files)
	$(BIN)/python scripts/audit_dependencies.py

pytest: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint lint-deploy typecheck security pytest

# The unit tests alone: no server is started (no OpenBao, moto, PostgreSQL, browser), in seconds.
test-fast: venv
	$(BIN)/python -m pytest -m "not integration and not slow" -q

# Each benchmark starts the servers it needs, prints its table and ratios from one run, and
# rewrites its own section of bench/RESULTS.md, the one place the figures are kept.
bench: venv
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/cache.py
	$(BIN)/python bench/vault.py
	$(BIN)/python bench/aws.py
	$(BIN)/python bench/config_load.py
	$(BIN)/python bench/readyz.py
	$(BIN)/python bench/cached_hit.py
	$(BIN)/python bench/metrics_hit.py
	$(BIN)/python bench/scan.py
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/fleet.py
	@echo "figures: bench/RESULTS.md"

lock: $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis test-artifacts
