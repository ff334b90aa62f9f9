# leukoscope: make install | install-latest | lock | test | lint | segment | features | compare | bench
# CONFIG and RUN override the defaults: make compare CONFIG=allidb2 RUN=runs/allidb2
# CONFIG is a shipped config's name (demo, cnmc, allidb2) or the path of a .toml file.
PYTHON ?= python3
VENV   ?= .venv
CONFIG ?= demo
RUN    ?= runs/demo
JOBS   ?= 2
LOCK    = requirements-lock.txt
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install install-latest lock venv test test-fast lint segment features compare bench clean

# The exact versions of requirements-lock.txt (what the tests and the README's numbers ran on).
install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	$(MAKE) venv
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The newest versions pyproject.toml allows (unpinned; to try upgrades before `make lock`).
install-latest: venv
	$(BIN)/python -m pip install --quiet --upgrade -e ".[test,jax]"
	touch $(STAMP)

# Regenerate requirements-lock.txt from pyproject.toml (every platform, Python 3.10 and newer).
lock: venv
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test --extra jax --universal --python-version 3.10 --quiet -o $(LOCK)

venv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -ra -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

segment: $(STAMP)
	$(BIN)/leukoscope segment --config $(CONFIG) --out $(RUN) --jobs $(JOBS)

features: $(STAMP)
	$(BIN)/leukoscope features --config $(CONFIG) --out $(RUN) --jobs $(JOBS)

compare: $(STAMP)
	$(BIN)/leukoscope compare --config $(CONFIG) --out $(RUN) --jobs $(JOBS)

bench: $(STAMP)
	$(BIN)/python bench/segmentation.py --jobs $(JOBS)
	$(BIN)/python bench/features.py --jobs $(JOBS)

clean:
	rm -rf runs build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
