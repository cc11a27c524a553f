# CORTEX: two commands do everything on a fresh machine.
#   make run   - set up .venv if needed, initialise the data directory, serve the REST API
#   make test  - set up .venv with dev dependencies, lint, type-check and run the whole suite

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORTEX_HOME ?= $(CURDIR)/.cortex
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test lint setup setup-dev clean pg pg-stop

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

# The service on 127.0.0.1:8420; the first run prints an admin key (once). The guided demo:
#   .venv/bin/python -m cortex.demo --home .cortex
run: setup
	@# A new home gets a cortex.toml: the service acknowledges writes before their vectors exist.
	@test -e "$(CORTEX_HOME)/cortex.db" -o -e "$(CORTEX_HOME)/cortex.toml" || { \
	  mkdir -p "$(CORTEX_HOME)" && printf '%s\n' \
	  '# Written by `make run` for a new data directory; settings: docs/configuration.md.' \
	  '# Writes are acknowledged before their vectors exist: a background task embeds them' \
	  '# (found by words at once, by meaning moments later). "inline" waits for the model.' \
	  'vector_writes = "background"' > "$(CORTEX_HOME)/cortex.toml"; }
	@$(BIN)/cortex init --home "$(CORTEX_HOME)"
	@$(BIN)/cortex keys create --home "$(CORTEX_HOME)" --tenant default --role admin --if-missing
	@$(BIN)/python -m cortex.search.onnx_model >/dev/null  # export the model once (a few s)
	@$(BIN)/cortex serve --home "$(CORTEX_HOME)" --host 127.0.0.1 --port 8420

lint: setup-dev
	$(BIN)/ruff check cortex tests bench
	$(BIN)/ruff format --check cortex tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# A local PostgreSQL + pgvector (from the dev extra) in .cortex-pg; prints CORTEX_DATABASE_URL.
pg: setup-dev
	@$(BIN)/python -m cortex.store.postgres.devserver .cortex-pg

pg-stop: setup-dev
	@$(BIN)/python -m cortex.store.postgres.devserver .cortex-pg --stop

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
