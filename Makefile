# purchase-patterns: two commands set everything up on a fresh Debian machine with Python 3.11.
#   make run   - create .venv, install, run the main job on embedded defaults, then serve the
#                dashboard on 127.0.0.1:$(PORT) and print its URL (Ctrl+C stops it)
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
# Debian's Chromium drives the browser tests (Playwright never downloads a browser here).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export DBT_SEND_ANONYMOUS_USAGE_STATS := False

.PHONY: run test lint bench bench-dashboard airflow dashboard clean distclean help

help:
	@echo "make run   - set up and run the main job on a demo dataset, then serve the dashboard"
	@echo "make dashboard - serve the dashboard on what ./data already holds"
	@echo "make test  - set up and run the whole test suite"
	@echo "make lint  - ruff"
	@echo "make bench - benchmarks (slow)"
	@echo "make bench-dashboard - dashboard filter-change latency (BENCH_CUSTOMERS=100000)"
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
	$(BIN)/purchase-patterns --home $(HOME_DIR) dashboard --port $(PORT)

dashboard: $(VENV)/.run-$(STAMP_KEY)
	$(BIN)/purchase-patterns --home $(HOME_DIR) dashboard --port $(PORT)

test: $(VENV)/.test-$(STAMP_KEY) $(CHROMIUM)
	$(BIN)/ruff check src tests dashboard bench
	$(BIN)/python -m pytest -q -p no:cacheprovider

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# ~4.8 purchase lines per customer: BENCH_CUSTOMERS=2100000 is the 10M-row warehouse
BENCH_CUSTOMERS ?= 100000
bench-dashboard: $(VENV)/.test-$(STAMP_KEY)
	$(BIN)/python bench/bench_dashboard.py --customers $(BENCH_CUSTOMERS)

lint: $(VENV)/.test-$(STAMP_KEY)
	$(BIN)/ruff check src tests dashboard bench

clean:
	rm -rf $(HOME_DIR) .pytest_cache .ruff_cache transform/target transform/logs

distclean: clean
	rm -rf $(VENV)
