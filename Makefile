# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean services native

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,hf,spark]"
	touch $(STAMP) $(NATIVE)

# The watermark's hot path compiled with mypyc (setup.py), rebuilt in place when its sources change; an edited
# source runs as Python until then (src/distillguard/native.py). DISTILLGUARD_PURE=1 removes the build.
NATIVE := $(VENV)/.native
NATIVE_SOURCES := $(shell $(PYTHON) src/distillguard/native.py)

native: $(NATIVE)

$(NATIVE): $(STAMP) $(NATIVE_SOURCES)
	@touch $(NATIVE).next  # sources edited during the build leave the build behind them
	@if [ -n "$$DISTILLGUARD_PURE" ]; then find src -name '*.so' -delete; \
	else $(BIN)/python setup.py --quiet build_ext --inplace && touch src/distillguard/_native__mypyc.*.so; fi
	mv $(NATIVE).next $(NATIVE)

demo: $(STAMP) $(NATIVE)
	$(BIN)/distillguard demo

# The suite on pytest-xdist workers (docs/testing.md): more workers than cores, as most tests wait on the servers they
# start; a test file's tests stay on one worker, which builds the file's shared fixtures once; files go out in the
# order tests/conftest.py gives them (the long ones first), not by their number of tests.
TEST_WORKERS ?= 3

test: $(STAMP) $(NATIVE) services lint typecheck
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Redis and PostgreSQL for the tests that need real servers (they start their own instances).
services:
	scripts/install-services.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP) $(NATIVE)
	$(BIN)/python bench/gateway.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-data bench/.run build
	find src -name '*.so' -delete
