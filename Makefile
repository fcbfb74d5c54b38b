# Two commands on a fresh machine: `make demo` and `make test`. Everything installs from uv.lock.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin

# Airflow imports 2-3x faster from compiled bytecode (this machine sets PYTHONDONTWRITEBYTECODE).
export UV_COMPILE_BYTECODE := 1
export SURVEY_DATA_DIR ?= $(CURDIR)/data
# The embedded Airflow: SQLite metadata inside the repo (ignored), no examples, small parallelism.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__PARALLELISM := 2

YEAR ?= 2025
ENTERPRISES ?= 50000
SEED ?= 1
BENCH_ROWS ?= 1000000
E2E_ROWS ?= 5000000

.PHONY: help setup demo test lint bench bench-e2e clean postgres redis compose-config fonts chromium

help:
	@echo "make demo   set up .venv from uv.lock, synthesise $(ENTERPRISES) enterprises for two years, run the DAG for each, publish and audit"
	@echo "make test   set up and run ruff and the test suite"
	@echo "make lint   ruff (with the Airflow rules)"
	@echo "make bench  check + de-duplicate $(BENCH_ROWS) returns against the scan floor and a naive baseline"
	@echo "make bench-e2e  $(E2E_ROWS) returns from landing to publication against the scan floor"

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --python 3.11
	touch $@

setup: $(VENV)/.synced

$(AIRFLOW_HOME)/airflow.db: | $(VENV)/.synced
	$(BIN)/airflow db migrate > /dev/null
	$(BIN)/airflow pools set survey_duckdb 1 "one writer of a year's DuckDB/published files at a time" > /dev/null

# Two consecutive years, so the second year's tables carry year-on-year changes.
DEMO_YEARS := $(shell echo $$(( $(YEAR) - 1 )) $(YEAR))
# Worked example question 1 (README): which counties led the most international standards.
DEMO_QUESTION := select region_name as county, value as intl_led, conf_status from by_region \
	where survey_year = $(YEAR) and region_level = 'county' and indicator = 'intl_led' \
	order by value desc nulls last limit 10
WORKBOOKS := $(SURVEY_DATA_DIR)/output/$(YEAR)/follow_up
# The population (monitoring-tables.md §6): who answered, who was imputed and how, and the
# imputed share of each headline total.
DEMO_COVERAGE := select survey_year, frame_enterprises, frame_responded, response_rate, \
	imputed_ratio, imputed_donor, frame_rejected_codes from data_quality \
	where region_code = '330000' order by survey_year
DEMO_IMPUTED := select indicator, value, imputed, imputed_share, conf_status from headline \
	where survey_year = $(YEAR)

demo: setup fonts $(AIRFLOW_HOME)/airflow.db
	@for year in $(DEMO_YEARS); do \
		$(BIN)/python -m devtools.synth --year $$year --enterprises $(ENTERPRISES) --seed $(SEED) \
			|| exit 1; \
		echo "running the DAG for $$year (log: $(AIRFLOW_HOME)/demo-$$year.log)"; \
		rm -f $(AIRFLOW_HOME)/demo-$$year.log; \
		SURVEY_RUN_DEADLINE_HOURS=0 \
		$(BIN)/python -m devtools.dag_timing --year $$year --log $(AIRFLOW_HOME)/demo-$$year.log \
			|| { tail -n 40 $(AIRFLOW_HOME)/demo-$$year.log; exit 1; }; \
	done
	$(BIN)/survey accounting --year $(YEAR)
	@echo "Auditing the published $(YEAR) against both intruders of monitoring-tables.md §3"
	$(BIN)/survey audit --year $(YEAR)
	@echo "Which counties led the most international standards in $(YEAR)?"
	$(BIN)/survey query "$(DEMO_QUESTION)"
	@echo "Who answered, and who was imputed (ratio: from last year's return; donor: from a like enterprise)?"
	$(BIN)/survey query "$(DEMO_COVERAGE)"
	@echo "What share of each headline total of $(YEAR) is imputed?"
	$(BIN)/survey query "$(DEMO_IMPUTED)"
	@echo "The $(YEAR) report for the leadership (open it in a browser; it needs no network):"
	@echo "  $(SURVEY_DATA_DIR)/published/report/$(YEAR)/index.html"
	@echo "County follow-up workbooks written for $(YEAR): $$(ls $(WORKBOOKS)/*.xlsx | wc -l) in $(WORKBOOKS)/"

lint: setup
	$(BIN)/ruff check dags pipeline schemas tests devtools

# The real-scheduler test starts its own PostgreSQL cluster on 127.0.0.1: the server programs come
# from Debian's package, installed once (the test never uses the package's own cluster).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || { \
		echo "installing Debian's postgresql package"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			$(SUDO) apt-get install -y -qq postgresql > /dev/null; }

# The real-scheduler test's Celery broker: its own redis-server on 127.0.0.1 (password, no
# persistence), from Debian's package, installed once (the package's own service is not used).
redis:
	@test -x /usr/bin/redis-server || { \
		echo "installing Debian's redis-server package"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			$(SUDO) apt-get install -y -qq redis-server > /dev/null; }

# The report's charts are measured with Debian's CJK fonts; the browser test opens the report in
# Debian's Chromium. Both packages are installed once, when missing.
fonts:
	@ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc > /dev/null 2>&1 || { \
		echo "installing Debian's fonts-noto-cjk package"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			$(SUDO) apt-get install -y -qq fonts-noto-cjk > /dev/null; }

chromium: fonts
	@test -x /usr/bin/chromium || { \
		echo "installing Debian's chromium package"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			$(SUDO) apt-get install -y -qq chromium > /dev/null; }

# docker-compose.yml through a real compose parser (docker-compose 1.29 from PyPI, into .tools/).
compose-config:
	ops/compose-config.sh

test: setup lint compose-config postgres redis chromium
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python -m devtools.bench --rows $(BENCH_ROWS) --work-dir $(CURDIR)/.bench

bench-e2e: setup
	$(BIN)/python -m devtools.bench_e2e --rows $(E2E_ROWS) --work-dir $(CURDIR)/.bench-e2e

clean:
	rm -rf $(VENV) $(CURDIR)/.tools $(AIRFLOW_HOME) $(CURDIR)/.bench $(CURDIR)/.bench-e2e
