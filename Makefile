# osservatorio: the front door. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GITFILTER := $(VENV)/.git-filter
WORKERS ?= 2
THEME ?= coprogettazione-anziani

.DEFAULT_GOAL := help
.PHONY: help env demo-data demo test test-fast run batch site validate lab bench calibrate clean-outputs

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

# uv installs the same packages as pip, resolved and downloaded in parallel (about 7 s
# from its cache instead of 2 min); pip does it if uv cannot. Then the bytecode of the
# modules a run imports is compiled once (running/bytecode.py: 15 s, against 27 s for
# uv's --compile-bytecode of every installed file), also where PYTHONDONTWRITEBYTECODE is set.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/python -m uv pip install --python $(BIN)/python --quiet -e '.[test]' \
	  || $(BIN)/python -m pip install --quiet -e '.[test]'
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m osservatorio.running.bytecode
	$(BIN)/python -m osservatorio.running.kernel >/dev/null  # the osservatorio kernel; tracked notebooks stripped on save
	@touch $(STAMP)

# nbstripout as the git filter of *.ipynb (.gitattributes): opening, running and saving a
# notebook in JupyterLab leaves git status clean (git config filter.nbstripout.*, set by
# lib/osservatorio/running/gitfilter.py). Skipped outside a git work tree.
$(GITFILTER): Makefile $(STAMP)
	$(BIN)/python -m osservatorio.running.gitfilter $(CURDIR)
	@touch $(GITFILTER)

env: $(STAMP) $(GITFILTER) ## create the virtual environment .venv from pyproject.toml (once), register the kernel and git filter

demo-data: $(STAMP) ## (re)generate the synthetic demo sources into data/demo (same seed, same bytes)
	$(BIN)/osservatorio demo

demo: demo-data ## set up, run every demo theme in batch and build the site
	$(BIN)/osservatorio batch --workers $(WORKERS)
	@echo "Site index: $(CURDIR)/outputs/site/index.html"

test: $(STAMP) $(GITFILTER) ## set up and run the whole test suite (unit, notebooks with nbval, end to end)
	$(BIN)/python -m pytest tests --nbval-lax notebooks -q

test-fast: $(STAMP) $(GITFILTER) ## the suite without end-to-end batch runs and notebook execution
	$(BIN)/python -m pytest tests -q -m "not e2e and not slow"

run: demo-data ## run one theme: make run THEME=patti-beni-comuni
	$(BIN)/osservatorio run $(THEME)

batch: demo-data ## run all themes (WORKERS=N processes)
	$(BIN)/osservatorio batch --workers $(WORKERS)

lab: $(STAMP) $(GITFILTER) ## open a theme's notebooks in JupyterLab: make lab THEME=patti-beni-comuni [STAGE=30]
	$(BIN)/osservatorio lab $(THEME) $(STAGE)

site: $(STAMP) ## rebuild outputs/site from the latest runs
	$(BIN)/osservatorio site

validate: demo-data ## validate every theme file and its data sources
	$(BIN)/osservatorio validate

bench: demo-data ## speed benchmarks, against the peer tools where there is one (installs the bench extra)
	$(BIN)/python -m uv pip install --python $(BIN)/python --quiet -e '.[test,bench]' \
	  || $(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/bench_twfe.py
	$(BIN)/python benchmarks/bench_staggered.py
	$(BIN)/python benchmarks/bench_sources.py
	$(BIN)/python benchmarks/bench_stage10.py
	$(BIN)/python benchmarks/bench_sdid.py
	$(BIN)/python benchmarks/bench_batch.py

calibrate: $(STAMP) ## coverage and size simulations of the estimators (minutes)
	$(BIN)/python benchmarks/calibrate_staggered.py
	$(BIN)/python benchmarks/calibrate_wild_bootstrap.py
	$(BIN)/python benchmarks/calibrate_demo.py
	$(BIN)/python benchmarks/calibrate_sdid.py
	$(BIN)/python benchmarks/calibrate_honest.py

clean-outputs: ## delete outputs/ (everything there is rebuilt from data and code)
	rm -rf outputs
