# Rewind: set-up is `make demo` and `make test`; both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CLIENTS := .venv-clients
NODE_CLIENT := tests/clients/node

.PHONY: install clients demo test unit e2e lint typecheck bench clean

install: $(BIN)/rewind

$(BIN)/rewind: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

# Client SDKs run in their own environments, as users' agents do.
clients: $(CLIENTS)/.done $(NODE_CLIENT)/node_modules/.done

$(CLIENTS)/.done: tests/clients/requirements.txt
	$(PYTHON) -m venv $(CLIENTS)
	$(CLIENTS)/bin/pip install -q --upgrade pip
	$(CLIENTS)/bin/pip install -q -r tests/clients/requirements.txt
	@touch $@

$(NODE_CLIENT)/node_modules/.done: $(NODE_CLIENT)/package.json
	cd $(NODE_CLIENT) && npm install --no-audit --no-fund --silent
	@touch $@

demo: install
	@bash scripts/demo.sh

test: install clients
	$(BIN)/ruff check rewind addons tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n 2 -q tests

unit: install
	$(BIN)/pytest -q tests/unit

lint: install
	$(BIN)/ruff check rewind addons tests bench
	$(BIN)/mypy

bench: install clients
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(CLIENTS) $(NODE_CLIENT)/node_modules
