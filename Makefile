# Two commands do all set-up from nothing (create .venv, install pinned dependencies, run):
#   make study   - the default study (config.yaml) on the embedded data, all cores, ending with the HTML report
#   make test    - the whole test suite
# Both are idempotent: the venv is rebuilt only when pyproject.toml changes.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config.yaml
CORES ?= all
RESULTS = $(shell $(BIN)/python -c "import yaml,sys; print(yaml.safe_load(open('$(CONFIG)')).get('results','results'))" 2>/dev/null || echo results)
PYTEST_ARGS ?=

.PHONY: study test test-fast lint format dry-run report bench clean-venv

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

study: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG) --rerun-incomplete
	$(BIN)/snakemake --cores 1 --configfile $(CONFIG) --report $(RESULTS)/report.html
	@echo "report: $(RESULTS)/report.html"

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

dry-run: $(STAMP)
	$(BIN)/snakemake -n --configfile $(CONFIG)

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules/
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/ruff format --check src tests workflow/scripts benchmarks

format: $(STAMP)
	$(BIN)/snakefmt Snakefile workflow/rules/
	$(BIN)/ruff format src tests workflow/scripts benchmarks

# CPU benchmarks (benchmarks/README.md): gradient PSD vs bare gradient pass, training loop vs plain loop,
# workflow wall times (the default study from scratch takes minutes; BENCH_WORKFLOW_ARGS=--plan-only skips it).
# Each waits for a 1-minute load average under 1.2 first (BENCH_NO_WAIT=1 skips the wait).
BENCH_WORKFLOW_ARGS ?=
bench: $(STAMP)
	@mkdir -p benchmarks/out
	$(BIN)/python benchmarks/bench_psd.py --json benchmarks/out/psd.json
	$(BIN)/python benchmarks/bench_train.py --json benchmarks/out/train.json
	$(BIN)/python benchmarks/bench_workflow.py --json benchmarks/out/workflow.json $(BENCH_WORKFLOW_ARGS)

clean-venv:
	rm -rf $(VENV)
