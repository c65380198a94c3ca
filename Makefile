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

# Debian packages: chromium prints the report's PDF; poppler-utils (pdftoppm, pdftotext)
# lets the tests open the PDF's pages. Installed once when missing (sudo unless root).
RUN_APT := chromium
TEST_APT := chromium poppler-utils

export DBT_SEND_ANONYMOUS_USAGE_STATS := False

.PHONY: run test lint bench airflow dashboard clean distclean help apt-run apt-test

help:
	@echo "make run   - set up and run the main job on a demo dataset, then serve the dashboard"
	@echo "make test  - set up and run the whole test suite"
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

define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    echo "installing Debian packages:$$missing"; \
	    $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "warning: not Debian: install$$missing yourself (the PDF report needs Chromium)"; \
	  fi; \
	fi
endef

apt-run:
	$(call apt_install,$(RUN_APT))

apt-test:
	$(call apt_install,$(TEST_APT))

run: $(VENV)/.run-$(STAMP_KEY) apt-run
	$(BIN)/purchase-patterns --home $(HOME_DIR) run

test: $(VENV)/.test-$(STAMP_KEY) apt-test
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(VENV)/.test-$(STAMP_KEY)
	$(BIN)/ruff check src tests

clean:
	rm -rf $(HOME_DIR) .pytest_cache .ruff_cache transform/target transform/logs

distclean: clean
	rm -rf $(VENV)
