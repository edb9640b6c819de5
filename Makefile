# Two commands do all the set-up on a fresh machine with Python 3.11+:
#   make run   - the main job on MovieLens 100K
#   make test  - the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast bench docs clean

# Without MOVIEREC_DATA, take the MovieLens archives from ../shared/data when that folder holds
# ml-100k.zip (as CI's machines do), instead of downloading them.
ifeq ($(origin MOVIEREC_DATA),undefined)
ifneq ($(wildcard ../shared/data/ml-100k.zip),)
export MOVIEREC_DATA := $(abspath ../shared/data)
endif
endif

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/movierec recommend --dataset ml-100k --n 10 --out out

test: $(STAMP)
	$(BIN)/python -m pytest

# Tests marked slow (over about 2-3 s each: whole command runs on MovieLens, SageMaker flows) or
# spark (a JVM to start) are left out; the rest still reach every module of movierec
# (tests/test_fast_loop.py checks it). Stops at the first failure, runs the last failures first.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not spark" -x --ff -q

# The site (mkdocs-material, API pages from docstrings) goes to site/; --strict fails on any warning.
$(VENV)/.docs-stamp: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

docs: $(VENV)/.docs-stamp
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
