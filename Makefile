# Set-up is part of every target: a fresh machine needs only Python 3.11+ and make.
SHELL := /bin/bash
PYTHON ?= python3
# uv from PATH, else the copy pip installs into this Python (bootstrapped on first use).
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif
export UV_LINK_MODE ?= copy

.PHONY: demo airflow test bench bench-quick sync lint docs mutate clean

.venv/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --locked --all-extras --group dev
	@touch $@

sync: .venv/.synced

# The taxi DAG once, through Airflow's dag.test(), on $$NEVE_URL (default: duckdb:///./neve.duckdb).
demo: sync
	$(UV) run --no-sync python -m neve.demo

# airflow standalone with dags/ and the neve_default connection; prints URL and login.
airflow: sync
	$(UV) run --no-sync python -m neve.demo airflow

test: sync
	$(UV) run --no-sync pytest -n auto --durations=15

# Every benchmark in one process tree; rewrites BENCHMARKS.md and docs/img/*.png (about an hour).
bench: sync
	$(UV) sync --locked --all-extras --group dev --group bench
	$(UV) run --no-sync python benchmarks/run.py

# 1M rows, one repeat, a few minutes. NEVE_BENCH_OUTPUT=/some/BENCHMARKS.md writes the report
# there and leaves the checkout untouched (CI's smoke run).
bench-quick: sync
	$(UV) sync --locked --all-extras --group dev --group bench
	$(UV) run --no-sync python benchmarks/run.py --quick

lint: sync
	$(UV) run --no-sync ruff check src tests benchmarks

# Plants known bugs one at a time (tools/mutate.py) and reports how many the tests catch.
mutate: sync
	$(UV) run --no-sync python tools/mutate.py $(MUTANTS)

# The support matrix is generated from the test-suite's engine markers; a test keeps it current.
docs: sync
	$(UV) run --no-sync python docs/gen_support_matrix.py

clean:
	rm -rf .venv .neve neve.duckdb neve.duckdb.wal neve.stage
