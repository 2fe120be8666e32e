# Two commands for a new user: `make dev` (a running service, no servers needed) and
# `make test` (the whole suite against the machine's PostgreSQL and Redis).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: dev test test-fast lint install bench mutation

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

# Mutation testing of the pure core with the unit tests (docs/TESTING.md), a minute or two.
# mutants/ is removed first because mutmut keeps old verdicts when only tests changed. Prints
# killed/total per module, then the surviving mutants; fails if a module is below 95%.
mutation: install
	$(BIN)/python -c 'import mutmut' 2>/dev/null || $(BIN)/pip install --quiet -e '.[mutation]'
	rm -rf mutants && mkdir mutants
	$(BIN)/mutmut run --max-children 2 > mutants/run.log || { tail -c 3000 mutants/run.log; exit 1; }
	$(BIN)/mutmut results --all true | awk -F': ' \
	  '{ split($$1, name, "."); total[name[2]]++; if ($$2 == "killed") killed[name[2]]++ } \
	  END { for (m in total) { score = 100 * killed[m] / total[m]; if (score < 95) low = 1; \
	        printf "%-7s %d/%d killed (%.1f%%)\n", m, killed[m], total[m], score } exit low }'
	$(BIN)/mutmut results
