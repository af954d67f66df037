# phoneflow: `make demo` to see it work, `make test` to check it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest golden-update bench system-deps clean builder

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The builder (builder/, TypeScript): `npm ci` from the lock file when it changes, one Vite build
# into server/dashboard/static/builder/ (git-ignored) when a source changes.
BUILDER_MODULES := builder/node_modules/.installed
BUILDER_BUILT := server/dashboard/static/builder/.vite/manifest.json
BUILDER_SOURCES := $(shell find builder/src -type f 2>/dev/null) builder/vite.config.ts builder/tsconfig.json

$(BUILDER_MODULES): builder/package.json builder/package-lock.json
	@bash scripts/system-deps.sh node
	cd builder && npm ci --no-audit --no-fund --loglevel=error
	@touch $(BUILDER_MODULES)

$(BUILDER_BUILT): $(BUILDER_MODULES) $(wildcard $(BUILDER_SOURCES))
	cd builder && npm run --silent build

builder: $(BUILDER_BUILT)

demo: $(STAMP) builder
	@bash scripts/system-deps.sh adb
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

system-deps:
	@bash scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Two workers: most tests wait on servers, phones and browsers rather than compute, so the suite
# takes about half as long; `make pytest PYTEST_WORKERS=0` runs it in one process.
PYTEST_WORKERS ?= 2
pytest: $(STAMP) system-deps builder
	$(BIN)/python -m pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist worksteal) $(PYTEST_ARGS)

test: lint typecheck pytest

golden-update: $(STAMP)
	$(BIN)/python -m tests.golden_update

bench: $(STAMP) builder
	@bash scripts/system-deps.sh adb postgresql
	$(BIN)/python bench/interpreter.py
	$(BIN)/python bench/emulator.py
	$(BIN)/python bench/bridge.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/list_runs.py
	$(BIN)/python bench/validate_draft.py
	$(BIN)/python bench/simulate_screens.py
	$(BIN)/python bench/builder_first_paint.py
	$(BIN)/python bench/inspect_channel.py
	$(BIN)/python bench/device_costs.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/fleet.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache builder/node_modules server/dashboard/static/builder
