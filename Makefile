# Two commands for a newcomer: `make demo` and `make test`. Both build .venv from the lock file
# first (exact pins of the dependencies and of every extra: dask, report, map, dev), then install
# the project itself editable, without dependencies (pyproject.toml states ranges).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# uv (the lock's own pin of it, bootstrapped with pip) installs the lock: seconds where pip took
# minutes, which CI's 30-minute budget needs. The same exact pins either way; bytecode compiled at
# install as pip does (a process that may not write .pyc files would otherwise compile Prefect).
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "$$(grep '^uv==' requirements.lock)"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

.PHONY: setup demo test lint bench
setup: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/sftforge run configs/demo.yaml
	$(BIN)/sftforge run configs/demo_selfee.yaml

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q -n 2 --durations=25

lint: $(VENV)/.installed
	$(BIN)/ruff check .

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/sharegpt_pipeline.py --records 20000
