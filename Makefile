# gridvm: `make up` starts the one-machine cloud, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STARTER_DIR := build/starter
DATA_DIR ?= .gridvm
LISTEN ?= 127.0.0.1:8750
PYTEST_ARGS ?=

.PHONY: up down install system-deps venv images test lint unit bench clean help testbed testbed-up testbed-down screenshots

help:
	@echo "make up       install what is missing and start gridvm (server + local agent)"
	@echo "make down     stop it"
	@echo "make install  system packages, .venv from requirements.lock, starter images"
	@echo "make test     install, lint, and run the whole test suite"
	@echo "make bench    run the benchmarks; results in bench/results/"
	@echo "make testbed  site networking on several hosts (network namespaces, real VMs; root)"
	@echo "make testbed-up / testbed-down  that test bed left running for a demo, and removed"
	@echo "make screenshots  the web portal's pages in headless Chromium -> docs/screenshots/"

up: install
	$(BIN)/gridvm up --detach --data-dir $(DATA_DIR) --listen $(LISTEN) --starter-dir $(STARTER_DIR)

down:
	$(BIN)/gridvm down --data-dir $(DATA_DIR)

install: system-deps venv images

system-deps:
	@scripts/install-system-deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "gridvm needs Python 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

images: venv
	$(BIN)/python -m gridvm.images.starter build --out $(STARTER_DIR)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install lint
	$(BIN)/pytest $(PYTEST_ARGS)

testbed: install
	$(BIN)/pytest -v tests/system/test_multi_host.py tests/system/test_site_network.py $(PYTEST_ARGS)

testbed-up: install
	$(BIN)/python scripts/testbed.py up

testbed-down:
	$(BIN)/python scripts/testbed.py down

screenshots: install
	$(BIN)/python scripts/portal_screenshots.py

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf build $(VENV) .pytest_cache .mypy_cache .ruff_cache
