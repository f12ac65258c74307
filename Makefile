PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench bench-peers

$(BIN)/sessionflow: pyproject.toml setup.py src/sessionflow/session_data/_kernels.pyx \
		src/sessionflow/_bar_builder.pyx src/sessionflow/importer/_cells.pyx
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/sessionflow

demo: setup
	$(BIN)/sessionflow demo

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/pipeline.py

bench-peers:
	bash benchmarks/setup_peers.sh
	$(PY) benchmarks/compare.py --symbols 10,100,500 --sessions 5 --timeout-for backtrader=1500
