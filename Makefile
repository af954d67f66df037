# phoneflow: `make demo` to see it work, `make test` to check it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest golden-update bench system-deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	@bash scripts/system-deps.sh adb
	$(BIN)/python scripts/demo.py

system-deps:
	@bash scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

golden-update: $(STAMP)
	$(BIN)/python -m tests.golden_update

bench: $(STAMP)
	@bash scripts/system-deps.sh adb postgresql
	$(BIN)/python bench/interpreter.py
	$(BIN)/python bench/emulator.py
	$(BIN)/python bench/bridge.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/list_runs.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
