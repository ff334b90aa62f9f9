# leukoscope: make install | test | segment | features | compare | bench
# CONFIG and RUN override the defaults: make compare CONFIG=configs/allidb2.toml RUN=runs/allidb2
PYTHON ?= python3
VENV   ?= .venv
CONFIG ?= configs/demo.toml
RUN    ?= runs/demo
JOBS   ?= 2
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install test test-fast segment features compare bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -ra -m "not slow"

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
	rm -rf runs build *.egg-info .pytest_cache
