# Two commands: `make lab` (set up and open JupyterLab) and `make test` (set up and run all tests).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
NBVAL   := --nbval-lax --nbval-current-env --nbval-cell-timeout=120 --nbval-sanitize-with tests/nbval_sanitize.cfg
PORT    ?= 8888
# Jupyter, IPython and matplotlib keep their config, data and caches inside the venv: nothing is
# written to the home directory, by the lab, the kernels that the tests start, the demo or the bench.
JUPYTER_ENV := JUPYTER_CONFIG_DIR=$(CURDIR)/$(VENV)/etc/jupyter JUPYTER_DATA_DIR=$(CURDIR)/$(VENV)/share/jupyter \
	IPYTHONDIR=$(CURDIR)/$(VENV)/ipython MPLCONFIGDIR=$(CURDIR)/$(VENV)/mpl
# The course's networks are tiny: one torch thread is fastest, and on a shared 2-core machine two
# threads per process that compete for the cores can be 10x slower. Tests and notebooks use one.
TEST_ENV := OMP_NUM_THREADS=1 $(JUPYTER_ENV)
FAST_ENV := $(TEST_ENV) LESSON_FAST=1 MPLBACKEND=Agg

.PHONY: lab test test-unit test-notebooks demo bench assignments setup clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $(STAMP)

lab: $(STAMP)
	$(JUPYTER_ENV) $(BIN)/jupyter lab --notebook-dir=notebooks --port=$(PORT) $(LAB_ARGS)

test: test-unit test-notebooks

test-unit: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -q tests

test-notebooks: $(STAMP)
	$(FAST_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider $(NBVAL) notebooks

demo: $(STAMP)
	$(JUPYTER_ENV) $(BIN)/python -m lesson_lib demo

bench: $(STAMP)
	$(JUPYTER_ENV) $(BIN)/python -m lesson_lib bench

assignments: $(STAMP)
	$(BIN)/python -m lesson_lib assignments --out build/assignments

clean:
	rm -rf $(VENV) build .pytest_cache
