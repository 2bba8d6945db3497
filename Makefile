# Two commands do all the setup on a fresh machine:
#   make run    create .venv, prepare var/ (dev contracts and keys), run the gateway
#   make test   create .venv, then ruff, mypy and pytest, stopping at the first failure
#
# The virtual environment is (re)installed only when pyproject.toml is newer than
# the stamp file inside it. Another interpreter: make test PYTHON=python3.12

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-from-pyproject

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv run test lint typecheck unit simulate clean

help:
	@echo "make run        set up .venv, vt-gateway dev init, vt-gateway run (config/gateway.toml)"
	@echo "make test       set up .venv, then ruff check, mypy, pytest (stops at the first failure)"
	@echo "make lint       ruff check ."
	@echo "make typecheck  mypy (strict, packages from pyproject.toml)"
	@echo "make unit       pytest tests/unit (no services needed)"
	@echo "make simulate   the year simulation at the region's full size, 10,000 reports (about 25-40 min)"
	@echo "make venv       only create/refresh .venv"
	@echo "make clean      remove .venv and caches (keeps var/)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "error: $(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())' 2>/dev/null || echo '?'); vt-gateway needs 3.11 or newer (make ... PYTHON=python3.11)" >&2; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "error: '$(PYTHON) -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/vt-gateway dev init
	$(BIN)/vt-gateway run --config config/gateway.toml

# One recipe, one command a line: make stops at the first non-zero exit, in this order.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

# make test runs the year with 300 reports (the suite's time budget); this runs the full region.
simulate: $(STAMP)
	VTGW_SIMULATION_REPORTS=10000 $(BIN)/python -m pytest tests/simulation

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
