VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install tools demo test test-matrix smoke celery-suite bench chaos lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml examples/monitoring/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,flower,otel]' -e examples/monitoring
	touch $@

demo: install
	$(BIN)/taskplane demo

# promtool (Debian's prometheus package) checks deploy/prometheus in the tests, and Debian's chromium runs the
# dashboard's browser tests (driven by Playwright); installed as root if missing.
tools:
	@missing=""; command -v promtool >/dev/null 2>&1 || missing="prometheus"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	[ -z "$$missing" ] || [ "$$(id -u)" != 0 ] || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; }

# Two test processes, each with its own embedded server (tests/conftest.py): about half the time.
test: install tools
	$(BIN)/python -m pytest -n 2

# The core, celery and compatibility tests on the lowest declared versions of every runtime dependency and Python,
# and on the newest with the newest Python here; the cluster tests on the lowest versions that run a cluster
# (.ci/matrix.py; virtual environments under .matrix/).
test-matrix:
	$(PYTHON) .ci/matrix.py

# The wheel installed without extras in a new virtual environment outside the checkout: a worker, an enqueue by
# name and from code, taskplane dev and its HTTP API, nothing left running (.ci/smoke.py).
smoke:
	$(PYTHON) .ci/smoke.py

# Celery's own integration tests of canvas and tasks (from the installed Celery's source) on plain Celery and on
# taskplane, with the differences docs/migration.md names (.ci/celery_suite/run.py; about an hour).
celery-suite: install
	$(BIN)/python .ci/celery_suite/run.py $(SUITE_ARGS)

# taskplane side by side with plain Celery and Dramatiq (docs/performance.md); BENCH_ARGS=--quick for a short run.
bench: install tools
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

# Fault runs with real workers and a private Valkey per fault; prints what was lost (CHAOS_ARGS=--quick).
chaos: install
	$(BIN)/python -m benchmarks.chaos $(CHAOS_ARGS)

lint: install
	$(BIN)/ruff check src tests benchmarks examples .ci
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
