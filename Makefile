# iotlab: `make lab` to work, `make test` to check. Everything else is a building block.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
LABKIT := $(BIN)/labkit

.DEFAULT_GOAL := help
.PHONY: help install jars up down status lab demo bench dashboard check test lint types browser clean

help:
	@echo "make lab     install, start Kafka + HBase, open JupyterLab on notebooks/"
	@echo "make check   the quick loop, no services: ruff, mypy and the unit tests (seconds)"
	@echo "make test    install, start the services, run every test and notebook, stop"
	@echo "make down    stop every process of the lab"
	@echo "make status  show the services"
	@echo "make demo    30 simulated days through Kafka, Flink and HBase (labkit run)"
	@echo "make bench   the benchmark: figures in a table and in build/bench.json"
	@echo "make dashboard  regenerate Grafana's dashboard (grafana/provisioning) from the catalogue"
	@echo "make lint    ruff;  make types  mypy"

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: the lab needs Python 3.11 (or set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Re-installs when the pins change.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

jars: install
	$(LABKIT) jars

up: install
	$(LABKIT) up

down:
	@if [ -x $(LABKIT) ]; then $(LABKIT) down; else echo "Nothing to stop (no $(VENV))."; fi

status: install
	$(LABKIT) status

# The pipeline runs once, so that the notebooks and the API have data from the start.
lab: up
	$(LABKIT) run --days 30 --if-empty
	$(LABKIT) api --background
	$(LABKIT) lab

demo: up
	$(LABKIT) run --days 30

bench: up
	@mkdir -p build
	$(LABKIT) bench --json build/bench.json

# The provisioned dashboard is generated (labkit/dashboard/build.py); a unit test keeps it so.
dashboard: install
	$(LABKIT) grafana-dashboard

lint: install
	$(BIN)/ruff check labkit tests notebooks/solutions
	$(BIN)/ruff format --check labkit tests notebooks/solutions

types: install
	$(BIN)/mypy

# The quick loop: no services, no JVM.
check: lint types
	$(BIN)/pytest -q -m unit tests/unit

# Debian's Chromium, for the browser test (Playwright drives it; it downloads no browser).
browser:
	@command -v chromium >/dev/null || { \
	  echo "Installing Debian's chromium for the browser test..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The services are stopped again whatever the tests do (also on failure or Ctrl-C).
test: install browser
	$(MAKE) --no-print-directory check
	@trap '$(LABKIT) down' EXIT; \
	  $(LABKIT) up && $(BIN)/pytest -m integration --durations=25

clean: down
	rm -rf build .pytest_cache .ruff_cache
