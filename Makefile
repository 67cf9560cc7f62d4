# Two entry points: `make demo` (the main job on the embedded digits) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of PyTorch first, so that resolving the other dependencies never pulls a CUDA build.
TORCH_SPEC ?= torch==2.13.0
# Example third-party encoder packages, installed and tested as an outside author would.
PLUGINS := plugins/toksuite-tutorial plugins/toksuite-bpe-extras
LINT_PATHS := toksuite tests benchmarks plugins scripts

.PHONY: install plugins demo test lint format

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[test,docs]"

plugins: install
	for p in $(PLUGINS); do $(BIN)/pip install -q --no-deps -e $$p || exit 1; done

demo: install
	$(BIN)/toksuite compare

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

format:
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

test: install lint plugins
	$(BIN)/python -m pytest
	for p in $(PLUGINS); do $(BIN)/python -m pytest $$p/tests || exit 1; done
	$(BIN)/python plugins/check_plugins.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site
