# safr-lightning: make train [ARGS="dataset=imdb"] | make test: each creates the venv and installs on first use.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# Written after a successful install; every target that runs the project needs it (and reinstalls
# when pyproject.toml changes). `make install` always reinstalls.
STAMP := $(VENV)/.installed
# The offline data copy beside the project (../shared/data), unless SAFR_DATA_DIR says otherwise.
ifeq ($(SAFR_DATA_DIR),)
ifneq ($(wildcard ../shared/data/sst2),)
export SAFR_DATA_DIR := $(abspath ../shared/data)
endif
endif
# The CPU wheel on this machine; on a GPU box use e.g. TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0
ARGS ?=
# make sweep: which sweep (conf/sweep/), what to cross it with, where to run it. Empty DATASETS / SEEDS
# keep the sweep's own lists (sst2,imdb and 0,1,2). LAUNCHER: basic (one job after another), joblib
# (N_JOBS in parallel on this machine; with trainer=gpu one GPU per job), slurm (conf/hydra/launcher/slurm.yaml).
SWEEP ?= paper
DATASETS ?=
SEEDS ?=
LAUNCHER ?= basic
N_JOBS ?=
OVERRIDES ?=
# make search: how many trials (default 40), the study's folder and the report's name, the Table 6 json to overlay.
N_TRIALS ?=
SEARCH_DIR ?= multirun/search/pareto_sst2_exact
SEARCH_NAME ?= sst2_pareto_exact
GRID ?= docs/results/sst2_table6_exact.json
# make continue: the committed plans (safr_lightning/sweep/committed.py), plan by plan, running only the
# jobs without a record in docs/results/<plan>/ (each record is written the moment its job finishes:
# commit it). N_JOBS jobs at once (default 2, threads 2 // N_JOBS); OVERRIDES go to every job.
PLANS ?= imdb_exact sst2_table6_paper imdb_paper_mode
# make table: SWEEP_DIR defaults to the newest sweep under multirun/; K is the deletion level in %.
SWEEP_DIR ?=
K ?= 30

.PHONY: install test test-fast train sweep table search continue lint format clean

install:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev,sweep]'
	touch $(STAMP)

$(STAMP): pyproject.toml
	$(MAKE) install

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not real_data"

train: $(STAMP)
	$(PY) -m safr_lightning.train $(ARGS)

sweep: $(STAMP)
	$(PY) -m safr_lightning.train --multirun +sweep=$(SWEEP) hydra/launcher=$(LAUNCHER) \
		$(if $(DATASETS),dataset=$(DATASETS)) $(if $(SEEDS),seed=$(SEEDS)) \
		$(if $(N_JOBS),hydra.launcher.n_jobs=$(N_JOBS)) $(OVERRIDES)

table: $(STAMP)
	$(PY) -m safr_lightning.aggregate $(SWEEP_DIR) --k $(K)

# make search: the λ accuracy-SRS front (conf/hparams_search/pareto.yaml); the same command continues a
# killed study (and, from the committed trial records in docs/results/$(SEARCH_NAME)/, one whose folder is gone). Then re-test the front with seeds 0-2 and write docs/results/$(SEARCH_NAME).{md,csv,json,png}.
search: $(STAMP)
	-$(PY) -m safr_lightning.train --multirun hparams_search=pareto hydra/launcher=$(LAUNCHER) hydra.sweeper.records=docs/results/$(SEARCH_NAME) \
		$(if $(N_TRIALS),hydra.sweeper.n_trials=$(N_TRIALS)) $(if $(N_JOBS),hydra.sweeper.n_jobs=$(N_JOBS) hydra.launcher.n_jobs=$(N_JOBS)) $(OVERRIDES)
	$(PY) -m safr_lightning.search $(SEARCH_DIR) --retest --name $(SEARCH_NAME) $(if $(GRID),--grid $(GRID)) $(if $(N_JOBS),--jobs $(N_JOBS))

# A failed job does not stop the other plans (exit 1 at the end); a signal (Ctrl-C, SIGTERM: exit > 128) stops all.
continue: $(STAMP)
	@status=0; for plan in $(PLANS); do \
		$(PY) -m safr_lightning.sweep.committed $$plan --missing $(if $(N_JOBS),--jobs $(N_JOBS)) $(OVERRIDES); rc=$$?; \
		if [ $$rc -gt 128 ]; then exit $$rc; elif [ $$rc -ne 0 ]; then status=1; fi; \
	done; exit $$status

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf outputs multirun wandb lightning_logs .pytest_cache .ruff_cache
