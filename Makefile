# The README's two commands, `make demo` and `make test`, do all set-up themselves:
# a .venv with every extra, the Debian packages of the real node and its image builds
# (installed only when missing), then the stack binaries (built once into the user cache).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: all venv node-packages binaries binaries-kueue images lint typecheck check test test-images test-real-node test-unit test-stack demo crds bench clean

all: test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[operator,runner,stack,dev]'
	touch $(STAMP)

venv: $(STAMP)

# buildah, mmdebstrap, containerd, runc, CNI plugins, iptables; apt-get runs only when one
# is missing.
node-packages:
	scripts/install-node-packages.sh

binaries: venv
	$(BIN)/python -m recon_stack.binaries

# Kueue's manager too, for the tests against the real Kueue (tests/kueue); the demo needs
# none of it.
binaries-kueue: venv
	$(BIN)/python -m recon_stack.binaries --kueue

# The operator and runner images from this working tree, as OCI archives in the user cache
# (a warm run builds nothing).
images: venv node-packages
	$(BIN)/python -m recon_cli dev images

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy api cli operator runner stack

check: lint typecheck

test: check node-packages binaries binaries-kueue
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The images built and inspected (opt-in: a cold build takes about 17 minutes here).
test-images: check node-packages
	$(BIN)/python -m pytest -m images tests/images $(PYTEST_ARGS)

# The real node's own tests (opt-in while the process node is the default).
test-real-node: check node-packages binaries
	$(BIN)/python -m pytest -m realnode tests/realnode $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/python -m pytest -m "not stack" $(PYTEST_ARGS)

# The whole system on the local stack: the stack up, the chart installed, a synthetic
# capture reconstructed through a ReconJob, the mesh and preview downloaded to demo-out/.
demo: venv node-packages binaries
	$(BIN)/python -m recon_cli.cluster_demo

crds: venv
	$(BIN)/python -m recon_api.crd --write

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
