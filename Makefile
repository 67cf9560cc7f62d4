# Two entry points: `make demo` (the main job on the embedded digits) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of PyTorch first, so that resolving the other dependencies never pulls a CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test lint format

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[test]"

demo: install
	$(BIN)/toksuite compare

lint: install
	$(BIN)/ruff check toksuite tests benchmarks
	$(BIN)/ruff format --check toksuite tests benchmarks

format:
	$(BIN)/ruff check --fix toksuite tests benchmarks
	$(BIN)/ruff format toksuite tests benchmarks

test: install lint
	$(BIN)/python -m pytest
