# Rewind: set-up is `make demo` and `make test`; both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CLIENTS := .venv-clients
FRAMEWORKS := .venv-frameworks
NODE_CLIENT := tests/clients/node

.PHONY: install clients frameworks plugin browser services demo test compat unit lint bench clean

install: $(BIN)/rewind

$(BIN)/rewind: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

# Client SDKs run in their own environments, as users' agents do.
clients: $(CLIENTS)/.done $(NODE_CLIENT)/node_modules/.done

# Agent frameworks for the framework examples (tests/frameworks), in their own venv, and
# the Vercel AI SDK example's packages (tests/frameworks/node), pinned by its package-lock.
FRAMEWORKS_NODE := tests/frameworks/node
frameworks: $(FRAMEWORKS)/.done $(FRAMEWORKS_NODE)/node_modules/.done

$(FRAMEWORKS)/.done: tests/frameworks/requirements.txt
	$(PYTHON) -m venv $(FRAMEWORKS)
	$(FRAMEWORKS)/bin/pip install -q --upgrade pip
	$(FRAMEWORKS)/bin/pip install -q -r tests/frameworks/requirements.txt
	@touch $@

$(FRAMEWORKS_NODE)/node_modules/.done: $(FRAMEWORKS_NODE)/package.json $(FRAMEWORKS_NODE)/package-lock.json
	cd $(FRAMEWORKS_NODE) && npm install --no-audit --no-fund --silent
	@touch $@

# A user's own test environment for the pytest plugin: the latest openai SDK and pytest,
# the plugin, and no mitmproxy (its h11 pin clashes with current httpx on Python 3.11).
PLUGIN_VENV := .venv-plugin
plugin: $(PLUGIN_VENV)/.done

$(PLUGIN_VENV)/.done: plugins/pytest-rewind/pyproject.toml
	$(PYTHON) -m venv $(PLUGIN_VENV)
	$(PLUGIN_VENV)/bin/pip install -q --upgrade pip
	$(PLUGIN_VENV)/bin/pip install -q pytest openai ./plugins/pytest-rewind
	@touch $@

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

# A real browser for the viewer's tests: the system Chromium (Debian's package; Playwright's
# own browser download is not reachable here), driven by Playwright for Python (a dev
# dependency). Without root or sudo it cannot be installed: the browser tests then skip.
browser: install
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
		else echo "browser: chromium is missing and needs root to install; browser tests will skip"; exit 0; fi; \
		$$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null; }; }

# Real services for the team-store tests (tests/services.py): a private PostgreSQL cluster,
# from Debian's postgresql package (its binaries are not on PATH; the tests find them under
# /usr/lib/postgresql), and moto's S3 server (a dev dependency). Without root or sudo
# PostgreSQL cannot be installed: the team-store tests then skip.
services: install
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
		else echo "services: PostgreSQL is missing and needs root to install; team-store tests will skip"; exit 0; fi; \
		$$SUDO apt-get install -y -q postgresql >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q postgresql >/dev/null; }; }

test: install clients frameworks plugin browser services
	$(BIN)/ruff check rewind addons tests bench plugins examples
	$(BIN)/mypy
	$(BIN)/mypy --strict plugins/pytest-rewind/pytest_rewind.py bench
	@# 3 workers on 2 cores: the end-to-end tests mostly wait on agents, proxies and browsers (4 were
	@# faster but, 1 run in 5, starved a WebSocket handshake past its 10 s timeout)
	$(BIN)/pytest -n 3 --dist worksteal -q tests

# mitmproxy 12 installs on Python 3.12+: record and replay end to end there too, when a
# python3.12 is on this machine (skipped with a message otherwise).
PY312 ?= $(shell for p in $$HOME/.pyenv/versions/3.12*/bin/python python3.12; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo $$p; break; }; done)
VENV312 := .venv312

compat:
	@if [ -z "$(PY312)" ]; then echo "compat: no python3.12 here; skipped"; exit 0; fi; \
	[ -x $(VENV312)/bin/rewind ] || { $(PY312) -m venv $(VENV312) && \
		$(VENV312)/bin/pip install -q --upgrade pip && $(VENV312)/bin/pip install -q -e '.[dev]'; } && \
	$(VENV312)/bin/pytest -n 2 -q tests/unit/capture tests/e2e/test_record.py tests/e2e/test_replay.py \
		tests/e2e/test_http2.py tests/e2e/test_telemetry.py tests/e2e/test_websocket.py tests/e2e/test_local_servers.py \
		tests/unit/replay/test_forking.py tests/e2e/test_branch.py tests/e2e/test_mutate.py

unit: install
	$(BIN)/pytest -q tests/unit

lint: install
	$(BIN)/ruff check rewind addons tests bench plugins examples
	$(BIN)/mypy
	$(BIN)/mypy --strict plugins/pytest-rewind/pytest_rewind.py bench

# Latency and SSE (run.py), disk and read-back (disk.py), recorder memory (memory.py),
# start-up (startup.py), diff and bisect of two 10,000-step sessions (compare.py), stats
# over 1,000,000 steps (stats.py), team-store push, pull and remote stats on the real
# services (team.py); each prints its figures and writes bench/results/*.json.
bench: install clients services
	$(BIN)/python bench/run.py
	$(BIN)/python bench/disk.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/compare.py
	$(BIN)/python bench/stats.py
	$(BIN)/python bench/team.py
	$(BIN)/python bench/home_size.py

clean:
	rm -rf $(VENV) $(VENV312) $(CLIENTS) $(FRAMEWORKS) $(NODE_CLIENT)/node_modules $(FRAMEWORKS_NODE)/node_modules $(PLUGIN_VENV)
