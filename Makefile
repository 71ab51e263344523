# SnapMap: `make run` processes examples/drops/ through the Dagster pipeline; `make test` runs the suite.
# Both set up .venv first (idempotent: reinstalls only when requirements.lock changes).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock 2>/dev/null | cut -c1-16)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export OMP_NUM_THREADS := 1
export LANCE_LOG := error
export TOKENIZERS_PARALLELISM := false
export DAGSTER_HOME ?= $(CURDIR)/.snapmap/dagster_home
PYTEST_WORKERS ?= 2
UI_PORT ?= 3000

.PHONY: setup run ui test test-fast bench lint format clean

setup: $(STAMP)
	@# every schema's field index into the artifacts store, so the first `snapmap map` is warm
	@$(BIN)/python -c "from snapmap_pipeline.core.mapping.semantic import prebuild; prebuild()"

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

run: setup
	@mkdir -p "$(DAGSTER_HOME)"
	$(BIN)/python -m snapmap_pipeline.run_local

ui: setup
	@mkdir -p "$(DAGSTER_HOME)"
	$(BIN)/dagster dev -f definitions.py -p $(UI_PORT)

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --timeout 600 tests

test-fast: setup
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not slow" tests

bench: setup
	$(BIN)/python -m bench

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf .snapmap
