# Two commands: `make lab` (set up and open JupyterLab) and `make test` (set up and run all tests).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
NBVAL   := --nbval-lax --nbval-current-env --nbval-cell-timeout=120 --nbval-sanitize-with tests/nbval_sanitize.cfg
PORT    ?= 8888

.PHONY: lab test test-unit test-notebooks demo bench setup clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $(STAMP)

lab: $(STAMP)
	JUPYTER_CONFIG_DIR=$(CURDIR)/$(VENV)/etc/jupyter JUPYTER_DATA_DIR=$(CURDIR)/$(VENV)/share/jupyter \
	IPYTHONDIR=$(CURDIR)/$(VENV)/ipython MPLCONFIGDIR=$(CURDIR)/$(VENV)/mpl \
	$(BIN)/jupyter lab --notebook-dir=notebooks --port=$(PORT) $(LAB_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests
	LESSON_FAST=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q -p no:cacheprovider $(NBVAL) notebooks

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests

test-notebooks: $(STAMP)
	LESSON_FAST=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q -p no:cacheprovider $(NBVAL) notebooks

demo: $(STAMP)
	$(BIN)/python -m lesson_lib demo

bench: $(STAMP)
	$(BIN)/python -m lesson_lib bench

clean:
	rm -rf $(VENV) build .pytest_cache
