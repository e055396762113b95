# Set-up is part of every target: a fresh machine needs only Python 3.11+ and make.
SHELL := /bin/bash
PYTHON ?= python3
# uv from PATH, else a copy bootstrapped into a throwaway venv on first use. A venv, not
# `pip install uv` into $(PYTHON): Debian's and Ubuntu's system Python refuse that
# (externally-managed-environment).
BOOTSTRAP := .neve/bootstrap
UV := $(or $(shell command -v uv 2>/dev/null),$(BOOTSTRAP)/bin/uv)
export UV_LINK_MODE ?= copy

.PHONY: demo airflow test test-long bench bench-quick sync lint docs mutate torture clean

$(BOOTSTRAP)/bin/uv:
	@echo "uv is not on PATH: installing it into $(BOOTSTRAP) (a throwaway venv)"
	@$(PYTHON) -m venv $(BOOTSTRAP) || { echo "error: '$(PYTHON) -m venv' failed: install python3-venv" \
		"(apt-get install python3-venv) or uv (https://docs.astral.sh/uv/)"; exit 1; }
	$(BOOTSTRAP)/bin/python -m pip install --quiet --disable-pip-version-check uv

# --compile-bytecode: where PYTHONDONTWRITEBYTECODE=1 (many Docker images, this machine)
# nothing else writes .pyc files, and every process would compile its imports again.
.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --all-extras --group dev --compile-bytecode
	@touch $@

sync: .venv/.synced

# The taxi DAG once, through Airflow's dag.test(), on $$NEVE_URL (default: duckdb:///./neve.duckdb);
# it scores the held-out 2019-03, or MONTH=YYYY-MM (make demo MONTH=2020-04: the lockdown drifts).
demo: sync
	@$(UV) run --no-sync python -m tools.demo $(if $(MONTH),--month $(MONTH))

# airflow standalone with dags/ and the neve_default connection; prints URL and login.
airflow: sync
	@$(UV) run --no-sync python -m tools.demo airflow

test: sync
	$(UV) run --no-sync pytest -n auto --durations=15 -m "not long"

# The runs of minutes each (all of make mutate, logistic CV searches on every engine): CI runs them after make test.
test-long: sync
	$(UV) run --no-sync pytest -n auto --durations=15 -m long

# Every benchmark in one process tree; rewrites BENCHMARKS.md and docs/img/*.png (about an hour).
bench: sync
	$(UV) sync --locked --all-extras --group dev --group bench --compile-bytecode
	$(UV) run --no-sync python benchmarks/run.py

# 1M rows, one repeat, a few minutes. NEVE_BENCH_OUTPUT=/some/BENCHMARKS.md writes the report
# there and leaves the checkout untouched (CI's smoke run).
bench-quick: sync
	$(UV) sync --locked --all-extras --group dev --group bench --compile-bytecode
	$(UV) run --no-sync python benchmarks/run.py --quick

lint: sync
	$(UV) run --no-sync ruff check src tests benchmarks

# Plants known bugs one at a time (tools/mutate.py) and reports how many the tests catch.
mutate: sync
	$(UV) run --no-sync python tools/mutate.py $(MUTANTS)

# Registry writers SIGKILLed at random instants, KILLS times (default 1000) on a DuckDB file and
# then on a throwaway PostgreSQL server, each kill followed by a registry check and a check of
# every acknowledged write (tools/torture.py; results in docs/reliability.md). At the lowest CPU
# priority: about an hour each on a busy 2-core machine. Summaries append to torture.jsonl.
KILLS ?= 1000
torture: sync
	nice -n 19 $(UV) run --no-sync python tools/torture.py --engine duckdb --kills $(KILLS) --report torture.jsonl
	nice -n 19 $(UV) run --no-sync python tools/torture.py --engine postgres --kills $(KILLS) --report torture.jsonl

# The support matrix is generated from the test-suite's engine markers; a test keeps it current.
docs: sync
	$(UV) run --no-sync python docs/gen_support_matrix.py

clean:
	rm -rf .venv .neve neve.duckdb neve.duckdb.wal neve.stage
