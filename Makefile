# The README's two commands, `make demo` and `make test`, do all set-up themselves:
# a .venv with every extra, then the stack binaries (built once into the user cache).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: all venv binaries binaries-kueue lint typecheck check test test-unit test-stack demo crds bench clean

all: test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[operator,runner,stack,dev]'
	touch $(STAMP)

venv: $(STAMP)

binaries: venv
	$(BIN)/python -m recon_stack.binaries

# Kueue's manager too, for the tests against the real Kueue (tests/kueue); the demo needs
# none of it.
binaries-kueue: venv
	$(BIN)/python -m recon_stack.binaries --kueue

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy api cli operator runner stack

check: lint typecheck

test: check binaries binaries-kueue
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/python -m pytest -m "not stack" $(PYTEST_ARGS)

# The whole system on the local stack: the stack up, the chart installed, a synthetic
# capture reconstructed through a ReconJob, the mesh and preview downloaded to demo-out/.
demo: venv binaries
	$(BIN)/python -m recon_cli.cluster_demo

crds: venv
	$(BIN)/python -m recon_api.crd --write

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
