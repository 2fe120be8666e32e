# Two commands for a new user: `make dev` (a running service, no servers needed) and
# `make test` (the whole suite against the machine's PostgreSQL and Redis).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: dev test test-fast lint install bench

$(BIN)/ledgerflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/ledgerflow

dev: install
	$(BIN)/ledgerflow dev

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

# The unit tests and the fast integration tests, under a minute: no worker or API
# processes, benchmarks, soak, faults or Chromium (tests marked `slow`).
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

bench: install
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks --help
