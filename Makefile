# OneWindow: `make run` serves the demo, `make test` checks everything.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
PG_TEST_SERVER := postgres://postgres@127.0.0.1:5432
PG_PROBE := import asyncio, asyncpg; asyncio.run(asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres", timeout=3))

.PHONY: run test venv lint sdl node-deps bench-node-deps web web-deps web-check layout-rules

NPM_CI := npm ci --no-audit --no-fund
NEED_NPM = @command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "error: node and npm are not on PATH; $(1) needs Node.js 18+ (20 on CI) with npm:" \
	       "install them (e.g. apt-get install nodejs npm) and run make again" >&2; exit 1; }

venv: $(STAMP)

# Re-install only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
	  if [ -z "$(PYTHON)" ]; then \
	    echo "error: no python3.11 or python3 on PATH; install Python 3.11" >&2; exit 1; \
	  fi; \
	  version=$$("$(PYTHON)" -c 'import sys; print("%d.%d" % sys.version_info[:2])' || true); \
	  if [ "$$version" != "3.11" ]; then \
	    echo "error: $(PYTHON) is Python $${version:-unknown}, OneWindow needs 3.11;" \
	         "install python3.11 or run make PYTHON=/path/to/python3.11" >&2; exit 1; \
	  fi; \
	  echo "creating $(VENV) with $(PYTHON)"; \
	  "$(PYTHON)" -m venv $(VENV); \
	fi
	@version=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	if [ "$$version" != "3.11" ]; then \
	  echo "error: $(VENV) holds Python $$version, OneWindow needs 3.11; remove $(VENV) and run make again" >&2; \
	  exit 1; \
	fi
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: venv web
	$(BIN)/onewindow setup
	exec $(BIN)/onewindow serve

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The web apps (clients/web: one npm workspace, `npm ci` from its lockfile), installed again only
# when the lockfile changes and built again only when a source changes.
WEB := clients/web
WEB_DEPS := $(WEB)/node_modules/.installed
WEB_BUILT := $(WEB)/dist/.built
WEB_SOURCES = $(shell find $(WEB) \( -name node_modules -o -name dist \) -prune \
	-o -type f ! -name graphql-env.d.ts ! -name '*.test.ts' -print)

web-deps: $(WEB_DEPS)

$(WEB_DEPS): $(WEB)/package.json $(WEB)/package-lock.json
	$(call NEED_NPM,the web apps (clients/web))
	$(NPM_CI) --prefix $(WEB)
	touch $@

web: $(WEB_BUILT)

$(WEB_BUILT): $(WEB_DEPS) $(WEB_SOURCES)
	npm run --prefix $(WEB) build
	touch $@

# ESLint, vue-tsc (GraphQL documents checked against schema/schema.graphql) and the unit tests.
web-check: $(WEB_DEPS)
	npm run --prefix $(WEB) --silent check

# clients/web/shared/layout-rules.json from approval/documents.py (a test fails when stale).
layout-rules: venv
	$(BIN)/python -m clients.layout_rules

# The Yjs interop test's packages (tests/node/package-lock.json), again only when it changes.
node-deps: tests/node/node_modules/.installed

tests/node/node_modules/.installed: tests/node/package.json tests/node/package-lock.json
	$(call NEED_NPM,the Yjs interop test (tests/test_yjs_interop.py))
	$(NPM_CI) --omit=optional --prefix tests/node
	touch $@

# The reference server of bench/sync_bench.py (y-websocket's own server, with y-leveldb).
bench-node-deps: bench/node/node_modules/.installed

bench/node/node_modules/.installed: bench/node/package.json bench/node/package-lock.json
	$(call NEED_NPM,bench/sync_bench.py)
	$(NPM_CI) --prefix bench/node
	touch $@

sdl: venv
	$(BIN)/python -c 'from schema.app import SDL_PATH, export_sdl; SDL_PATH.write_text(export_sdl(), encoding="utf-8"); print("wrote", SDL_PATH)'

# Each leg runs in two worker processes (pytest-xdist): every worker has a database of its own,
# the tests of one file stay in one worker, the browser tests all in one (tests/conftest.py).
# Each leg prints its slowest tests. The PostgreSQL leg runs in databases of its own (named
# after this run), so two suites on one machine never drop each other's database, and runs the
# tests that use the database: the others do not depend on it and ran in the SQLite leg.
PYTEST := $(BIN)/pytest -n 2 --dist loadfile --durations=15

test: lint web-check node-deps web
	$(PYTEST)
	@if { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; } \
	    || $(BIN)/python -c '$(PG_PROBE)' 2>/dev/null; then \
	  url="$(PG_TEST_SERVER)/onewindow_test_$$(date +%s)_$$$$"; \
	  echo "PostgreSQL answers on 127.0.0.1:5432: running the tests that use the database" \
	       "against $$url (each worker appends _gwN; the browser tests ran on the first leg:" \
	       "they test the web app, not the database)"; \
	  ONEWINDOW_TEST_DATABASE_URL="$$url" $(PYTEST) --database-tests-only --ignore=tests/browser; \
	elif [ "$${REQUIRE_POSTGRES:-0}" = 1 ]; then \
	  echo "error: REQUIRE_POSTGRES=1 but no PostgreSQL answers on 127.0.0.1:5432;" \
	       "start it (e.g. .ci/run does) or unset REQUIRE_POSTGRES" >&2; \
	  exit 1; \
	else \
	  echo "PostgreSQL leg skipped: no server answers on 127.0.0.1:5432" \
	       "(set REQUIRE_POSTGRES=1 to make this an error)"; \
	fi
