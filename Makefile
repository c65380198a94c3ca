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
AIRFLOW_EXTRAS := report,dashboard,airflow
TEST_EXTRAS := report,dashboard,airflow,cloud,dev
STAMP_KEY := $(shell cat pyproject.toml constraints.txt 2>/dev/null | sha256sum | cut -c1-16)
# GCS and BigQuery emulators for the cloud tests: their own environment (the BigQuery emulator
# needs duckdb 1.5, the package duckdb 2.0), pinned in constraints-emulators.txt.
EMU_VENV := .venv-emulators
EMU_PACKAGES := bqemulator gcp-storage-emulator duckdb numpy duckdb-extension-spatial duckdb-extension-avro
EMU_KEY := $(shell cat constraints-emulators.txt tests/cloud/emulators.py 2>/dev/null | sha256sum | cut -c1-16)

# Debian packages: chromium prints the report's PDF; poppler-utils (pdftoppm, pdftotext)
# lets the tests open the PDF's pages. Installed once when missing (sudo unless root).
RUN_APT := chromium
TEST_APT := chromium poppler-utils

export DBT_SEND_ANONYMOUS_USAGE_STATS := False

.PHONY: run test test-cloud lint bench bench-smoke bench-dashboard bench-dashboard-floor bench-ingest-floor airflow dashboard emulators clean distclean help apt-run apt-test

help:
	@echo "make run   - set up and run the main job on a demo dataset, then serve the dashboard"
	@echo "make dashboard - serve the dashboard on what ./data already holds"
	@echo "make test  - set up and run the whole test suite (cloud tests run on local emulators)"
	@echo "make test-cloud - every cloud test, the slower dated comparison and Airflow run included"
	@echo "make lint  - ruff"
	@echo "make bench - benchmarks: BENCH_SIZES=100k,1M,10M BENCH_REPEATS=3 (slow; 100M separately)"
	@echo "make bench-smoke - the benchmark harness at its smoke size"
	@echo "make bench-dashboard - dashboard filter-change latency (BENCH_CUSTOMERS=100000)"
	@echo "make bench-dashboard-floor - where that latency goes: our queries vs DuckDB alone"
	@echo "make bench-ingest-floor BENCH_CSV=... - where ingest's time goes: its steps vs DuckDB alone"
	@echo "make airflow - Airflow on this machine (127.0.0.1:$(AIRFLOW_PORT)) with the project's DAGs"
	@echo "make clean - remove ./data and caches"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: python3.11 not found (apt-get install python3.11 python3.11-venv)"; exit 2; }
	$(PYTHON) -m venv $(VENV) || { echo "error: could not create $(VENV) (on Debian: apt-get install -y python3-venv)"; exit 2; }
	$(BIN)/python -m pip install --quiet --upgrade pip uv

# --compile-bytecode: the packages' .pyc files are written once, at install. Python writes them
# on first import otherwise, but not where PYTHONDONTWRITEBYTECODE is set (as on the machines
# this is developed and tested on): then every process compiles pandas, scikit-learn, SciPy,
# dbt... from source again, seconds per process (importing those four: 7.0 s -> 3.4 s).
$(VENV)/.run-$(STAMP_KEY): $(BIN)/python
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[$(RUN_EXTRAS)]"
	@touch $@

$(VENV)/.airflow-$(STAMP_KEY): $(BIN)/python
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[$(AIRFLOW_EXTRAS)]"
	@touch $@ $(VENV)/.run-$(STAMP_KEY)

$(VENV)/.test-$(STAMP_KEY): $(BIN)/python
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[$(TEST_EXTRAS)]"
	@touch $@ $(VENV)/.run-$(STAMP_KEY) $(VENV)/.airflow-$(STAMP_KEY)

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
	$(BIN)/purchase-patterns --home $(HOME_DIR) dashboard --port $(PORT)

dashboard: $(VENV)/.run-$(STAMP_KEY) apt-run
	$(BIN)/purchase-patterns --home $(HOME_DIR) dashboard --port $(PORT)

$(EMU_VENV)/.ready-$(EMU_KEY): $(BIN)/python
	rm -rf $(EMU_VENV)
	$(UV) venv --quiet --python $(PYTHON) $(EMU_VENV)
	$(UV) pip install --quiet --compile-bytecode --python $(EMU_VENV)/bin/python -c constraints-emulators.txt $(EMU_PACKAGES)
	# the BigQuery emulator loads these DuckDB extensions at start: install them from the wheels
	$(EMU_VENV)/bin/python tests/cloud/emulators.py prepare
	@touch $@

emulators: $(EMU_VENV)/.ready-$(EMU_KEY)

test: $(VENV)/.test-$(STAMP_KEY) $(EMU_VENV)/.ready-$(EMU_KEY) apt-test
	$(BIN)/ruff check src tests dags dashboard bench
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder \
	  -m "not cloud_full"

# every cloud test, with the slow ones: the dated CDNOW comparison on the BigQuery emulator
# (~3 min more) and both Airflow DAGs run with dag.test() on the emulators (~7 min more)
test-cloud: $(VENV)/.test-$(STAMP_KEY) $(EMU_VENV)/.ready-$(EMU_KEY) apt-test
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "cloud or cloud_full"

# Benchmarks (bench/harness.py; slow, never on a busy machine): datasets of BENCH_SIZES purchase
# rows (generated once into bench/.cache/), each command BENCH_REPEATS times in its own process;
# results in bench/results/ (results.json, results.md). BENCH_ONLY picks parts
# (floor,ours,run,pandas,clv,dashboard; run = end to end only). 100M rows is a separate run, into bench/results/100M/:
#   make bench BENCH_SIZES=100M BENCH_REPEATS=1 BENCH_ONLY=floor,run,pandas
BENCH_SIZES ?= 100k,1M,10M
BENCH_REPEATS ?= 3
BENCH_CLV_CUSTOMERS ?= 100k,1M
BENCH_ONLY ?= floor,ours,pandas,clv,dashboard
bench: $(VENV)/.test-$(STAMP_KEY) apt-run
	$(BIN)/python bench/harness.py --sizes $(BENCH_SIZES) --repeats $(BENCH_REPEATS) \
	  --clv-customers $(BENCH_CLV_CUSTOMERS) --only $(BENCH_ONLY)

# the harness at its smoke size (what make test checks), into bench/results/smoke/
bench-smoke: $(VENV)/.test-$(STAMP_KEY) apt-run
	$(BIN)/python bench/harness.py --smoke

# ~4.8 purchase lines per customer: BENCH_CUSTOMERS=2100000 is the 10M-row warehouse
BENCH_CUSTOMERS ?= 100000
bench-dashboard: $(VENV)/.test-$(STAMP_KEY) apt-run
	$(BIN)/python bench/bench_dashboard.py --customers $(BENCH_CUSTOMERS)

# where a filter change's time goes: our queries vs DuckDB alone on the best layout (same
# warehouse as bench-dashboard; BENCH_BROWSER_JSON: its report, to split off the rest)
bench-dashboard-floor: $(VENV)/.test-$(STAMP_KEY)
	$(BIN)/python bench/dashboard_floor.py --customers $(BENCH_CUSTOMERS) \
	  $(if $(BENCH_BROWSER_JSON),--browser-json $(BENCH_BROWSER_JSON))

# where ingest's time goes: each step of one ingest vs DuckDB alone copying the file and
# evaluating the contract (BENCH_CSV: a clean purchases CSV, e.g. one make bench generated
# in bench/.cache/)
bench-ingest-floor: $(VENV)/.test-$(STAMP_KEY)
	$(BIN)/python bench/ingest_floor.py $(or $(BENCH_CSV),$(error set BENCH_CSV to a purchases CSV))

lint: $(VENV)/.test-$(STAMP_KEY)
	$(BIN)/ruff check src tests dags dashboard bench

# Airflow for one user on this machine: the components `airflow standalone` runs (scheduler
# with the LocalExecutor, DAG processor, triggerer, API server and UI), a SQLite metadata
# database in <home>/.airflow, this repository's DAGs, no examples, at most 4 task processes,
# and nothing listening beyond 127.0.0.1: `airflow standalone` itself would also start two log
# servers on every interface, which one machine does not need (the UI reads the task logs
# from local files), so the components are started here without them; the API server first,
# so that the first tasks can report to it. Ctrl-C stops them all.
AIRFLOW_PORT ?= 8080
AIRFLOW_DIR = $(abspath $(HOME_DIR))/.airflow
AIRFLOW_URL = http://127.0.0.1:$(AIRFLOW_PORT)
# `airflow ...` with Ctrl-C (SIGINT) restored: a shell starts background commands with it
# ignored, and a component still starting up would then miss it
AIRFLOW_CMD = $(abspath $(BIN))/python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp("airflow", ["airflow", *sys.argv[1:]])'

airflow: $(VENV)/.airflow-$(STAMP_KEY)
	@mkdir -p "$(AIRFLOW_DIR)" "$(abspath $(HOME_DIR))/inbox"
	@export PATH="$(abspath $(BIN)):$$PATH" \
	  AIRFLOW_HOME="$(AIRFLOW_DIR)" \
	  AIRFLOW__CORE__DAGS_FOLDER="$(CURDIR)/dags" \
	  AIRFLOW__CORE__LOAD_EXAMPLES=False \
	  AIRFLOW__CORE__PARALLELISM=4 \
	  AIRFLOW__CORE__EXECUTOR=LocalExecutor \
	  AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False \
	  AIRFLOW__API__HOST=127.0.0.1 \
	  AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	  AIRFLOW__API__BASE_URL=$(AIRFLOW_URL) \
	  AIRFLOW__CORE__EXECUTION_API_SERVER_URL=$(AIRFLOW_URL)/execution/ \
	  AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
	  AIRFLOW__COSMOS__CACHE_DIR="$(AIRFLOW_DIR)/cosmos" \
	  PURCHASE_PATTERNS_HOME="$(abspath $(HOME_DIR))"; \
	echo "airflow: preparing the metadata database in $(AIRFLOW_DIR)"; \
	airflow db migrate > "$(AIRFLOW_DIR)/db-migrate.log" 2>&1 \
	  || { echo "error: airflow db migrate failed, see $(AIRFLOW_DIR)/db-migrate.log"; exit 2; }; \
	trap 'echo "airflow: stopping"; kill -TERM $$pids 2>/dev/null; wait; exit 0' INT TERM; \
	$(AIRFLOW_CMD) api-server --host 127.0.0.1 --port $(AIRFLOW_PORT) & pids="$$!"; \
	up=""; \
	for i in $$(seq 180); do \
	  $(abspath $(BIN))/python -c "import urllib.request; urllib.request.urlopen('$(AIRFLOW_URL)/api/v2/monitor/health', timeout=2)" 2>/dev/null && { up=1; break; }; \
	  sleep 1; \
	done; \
	[ -n "$$up" ] || { echo "error: the API server did not answer at $(AIRFLOW_URL) within 3 minutes"; kill -TERM $$pids; wait; exit 2; }; \
	$(AIRFLOW_CMD) scheduler --skip-serve-logs & pids="$$pids $$!"; \
	$(AIRFLOW_CMD) dag-processor & pids="$$pids $$!"; \
	$(AIRFLOW_CMD) triggerer --skip-serve-logs & pids="$$pids $$!"; \
	echo ""; \
	echo "Airflow is up at $(AIRFLOW_URL) (listening on 127.0.0.1 only)"; \
	echo "  log in as admin; the password is in $(AIRFLOW_DIR)/simple_auth_manager_passwords.json.generated"; \
	echo "  drop purchase files in $(abspath $(HOME_DIR))/inbox (ingest_to_lake looks every 10 minutes),"; \
	echo "  or trigger ingest_to_lake with a path; load_transform_validate follows. Ctrl-C stops Airflow."; \
	echo ""; \
	wait

clean:
	rm -rf $(HOME_DIR) .pytest_cache .ruff_cache transform/target transform/logs

distclean: clean
	rm -rf $(VENV) $(EMU_VENV)
