# purchase-patterns: two commands set everything up on a fresh Debian machine with Python 3.11.
#   make run   - create .venv, install, run the main job on embedded defaults, serve the dashboard
#   make test  - install what the tests need (apt packages included) and run the whole suite

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
HOME_DIR ?= data
PORT ?= 8501
# Extras per purpose; each install is remembered by a stamp keyed on the pins.
RUN_EXTRAS := report,dashboard
TEST_EXTRAS := report,dashboard,airflow,cloud,dev
STAMP_KEY := $(shell cat pyproject.toml constraints.txt 2>/dev/null | sha256sum | cut -c1-16)
# GCS and BigQuery emulators for the cloud tests: their own environment (the BigQuery emulator
# needs duckdb 1.5, the package duckdb 2.0), pinned in constraints-emulators.txt.
EMU_VENV := .venv-emulators
EMU_PACKAGES := bqemulator gcp-storage-emulator duckdb numpy duckdb-extension-spatial duckdb-extension-avro
EMU_KEY := $(shell cat constraints-emulators.txt tests/cloud/emulators.py 2>/dev/null | sha256sum | cut -c1-16)

export DBT_SEND_ANONYMOUS_USAGE_STATS := False

.PHONY: run test test-cloud lint bench airflow dashboard emulators clean distclean help

help:
	@echo "make run   - set up and run the main job on a demo dataset, then serve the dashboard"
	@echo "make test  - set up and run the whole test suite (cloud tests run on local emulators)"
	@echo "make test-cloud - every cloud test, the slower dated comparison included"
	@echo "make lint  - ruff"
	@echo "make bench - benchmarks (slow)"
	@echo "make clean - remove ./data and caches"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: python3.11 not found (apt-get install python3.11 python3.11-venv)"; exit 2; }
	$(PYTHON) -m venv $(VENV) || { echo "error: could not create $(VENV) (on Debian: apt-get install -y python3-venv)"; exit 2; }
	$(BIN)/python -m pip install --quiet --upgrade pip uv

$(VENV)/.run-$(STAMP_KEY): $(BIN)/python
	$(UV) pip install --quiet --python $(BIN)/python -c constraints.txt -e ".[$(RUN_EXTRAS)]"
	@touch $@

$(VENV)/.test-$(STAMP_KEY): $(BIN)/python
	$(UV) pip install --quiet --python $(BIN)/python -c constraints.txt -e ".[$(TEST_EXTRAS)]"
	@touch $@ $(VENV)/.run-$(STAMP_KEY)

run: $(VENV)/.run-$(STAMP_KEY)
	$(BIN)/purchase-patterns --home $(HOME_DIR) run

$(EMU_VENV)/.ready-$(EMU_KEY): $(BIN)/python
	rm -rf $(EMU_VENV)
	$(UV) venv --quiet --python $(PYTHON) $(EMU_VENV)
	$(UV) pip install --quiet --python $(EMU_VENV)/bin/python -c constraints-emulators.txt $(EMU_PACKAGES)
	# the BigQuery emulator loads these DuckDB extensions at start: install them from the wheels
	$(EMU_VENV)/bin/python tests/cloud/emulators.py prepare
	@touch $@

emulators: $(EMU_VENV)/.ready-$(EMU_KEY)

test: $(VENV)/.test-$(STAMP_KEY) $(EMU_VENV)/.ready-$(EMU_KEY)
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not cloud_full"

# every cloud test, the dated CDNOW comparison on the BigQuery emulator included (~3 min more)
test-cloud: $(VENV)/.test-$(STAMP_KEY) $(EMU_VENV)/.ready-$(EMU_KEY)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "cloud or cloud_full"

lint: $(VENV)/.test-$(STAMP_KEY)
	$(BIN)/ruff check src tests

clean:
	rm -rf $(HOME_DIR) .pytest_cache .ruff_cache transform/target transform/logs

distclean: clean
	rm -rf $(VENV) $(EMU_VENV)
