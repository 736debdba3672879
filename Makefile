# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean services

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,hf,spark]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/distillguard demo

# The suite on pytest-xdist workers (docs/testing.md): more workers than cores, as most tests wait on the servers they
# start; a test file's tests stay on one worker, which builds the file's shared fixtures once; files go out in the
# order tests/conftest.py gives them (the long ones first), not by their number of tests.
TEST_WORKERS ?= 3

test: $(STAMP) services lint typecheck
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Redis and PostgreSQL for the tests that need real servers (they start their own instances).
services:
	scripts/install-services.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/gateway.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-data bench/.run
