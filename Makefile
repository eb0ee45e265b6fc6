# Every target bootstraps itself: uv (if missing), then the locked environment.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
export UV_LINK_MODE ?= copy
# Compile every installed module once at sync time: where PYTHONDONTWRITEBYTECODE is set (as on some CI
# images), each Airflow process the suite starts would otherwise compile Airflow from source (seconds each).
export UV_COMPILE_BYTECODE ?= 1
# The suite is dominated by Airflow and server subprocesses: one pytest worker per core (at most 4),
# each taking whole files so module-scoped servers (api-server, Chromium) start once per file, slowest files
# first (tests/conftest.py orders them).
PYTEST_WORKERS ?= -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder

.PHONY: demo test test-compat test-box-provider lint bench reliability fleet bootstrap clean

bootstrap:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

demo: bootstrap
	@$(UV) run --frozen python -m demo $(if $(UI),--ui,)

lint: bootstrap
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy

test: lint
	$(UV) run --frozen pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-compat: bootstrap
	bash .ci/compat

test-box-provider: bootstrap
	bash .ci/box-provider

bench: bootstrap
	@$(UV) sync --frozen --quiet --group bench
	$(UV) run --frozen python -m bench $(BENCH_ARGS)

# A real multi-worker Airflow (CeleryExecutor, Redis, PostgreSQL) runs the fleet scenarios; FULL=1 is larger.
fleet: bootstrap
	@$(UV) sync --frozen --quiet --group fleet
	$(UV) run --frozen --group fleet python -m tests.fleet $(if $(FULL),--full,)

reliability: bootstrap
	$(UV) run --frozen pytest tests/reliability tests/security --full

clean:
	rm -rf .demo .fleet .pytest_cache .mypy_cache .ruff_cache
