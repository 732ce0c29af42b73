# Quick start: `make demo`, then `make test`. Both set up .venv from nothing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned and installed first: an unpinned torch in an empty venv would pull a CUDA build.
TORCH := torch==2.13.0

.PHONY: setup demo test lint browser clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/perfscope run -o perfscope-runs/demo examples/train_cnn.py --epochs 2

# Debian's chromium drives the HTML report tests (Playwright with executable_path).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: setup browser
	$(BIN)/ruff check perfscope tests benchmarks examples
	$(BIN)/ruff format --check perfscope tests benchmarks examples
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check --fix perfscope tests benchmarks examples
	$(BIN)/ruff format perfscope tests benchmarks examples

clean:
	rm -rf $(VENV) build dist perfscope-runs
