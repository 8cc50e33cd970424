# safr-lightning: make install | make train ARGS="dataset=imdb" | make test
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel on this machine; on a GPU box use e.g. TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0
ARGS ?=

.PHONY: install test test-fast train sweep table lint format clean

install:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev,sweep]'

test:
	$(PY) -m pytest -q

test-fast:
	$(PY) -m pytest -q -m "not slow and not real_data"

train:
	$(PY) -m safr_lightning.train $(ARGS)

sweep:
	@echo "make sweep: not yet (the sweep issue adds conf/sweep/paper.yaml)"

table:
	@echo "make table: not yet (the sweep issue adds the aggregator)"

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf outputs multirun wandb lightning_logs .pytest_cache .ruff_cache
