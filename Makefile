# CORTEX: two commands do everything on a fresh machine.
#   make run   - set up .venv if needed, initialise the data directory, run the guided demo
#   make test  - set up .venv with dev dependencies, lint, type-check and run the whole suite

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORTEX_HOME ?= $(CURDIR)/.cortex
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test lint setup setup-dev clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "CORTEX needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)

# torch first, pinned to the CPU build that pip finds without a CUDA download.
TORCH ?= torch==2.13.0

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install $(TORCH)
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PIP) install -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

run: setup
	@$(BIN)/cortex init --home "$(CORTEX_HOME)"
	@$(BIN)/python -m cortex.demo --home "$(CORTEX_HOME)"

lint: setup-dev
	$(BIN)/ruff check cortex tests bench
	$(BIN)/ruff format --check cortex tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
