# Treegate: `make run` serves the demo, `make test` runs every test. Both install what they need.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUN_STAMP := $(VENV)/.run-stamp
# The demo `make run` serves: the embedded SQLite database and how many trees it is seeded with.
DEMO_DB := treegate.db
DEMO_TREES := 2000
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install install-run browser redis audit-tools bench-tools run reset-demo screenshot test test-under-load lint format schema clean bench soak bench-import bench-coherence bench-bulk

install: $(STAMP)
install-run: $(RUN_STAMP)

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Installs exactly what uv.lock pins (the project itself, editable, and the dev tools).
$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $(STAMP) $(RUN_STAMP)

# What serving needs and no more (no test or lint tools); keeps them if they are there.
$(RUN_STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --no-dev --inexact --python $(PYTHON)
	touch $(RUN_STAMP)

# The GraphiQL browser test drives Debian's Chromium through chromedriver (a test tool's own
# browser download cannot work offline). Installs them only when missing; sudo only if not root.
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then :; else \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends chromium chromium-driver; \
	fi

# The shared rate-limit tests start a private Redis of their own (tests/redis_server.py) from
# Debian's redis-server: installed only when missing.
REDIS_SERVER := /usr/bin/redis-server

redis:
	@if [ -x $(REDIS_SERVER) ]; then :; else \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends redis-server; \
	fi

# A development admin key is (re)created on every run and printed, so GraphiQL users can try
# the mutations: paste it into GraphiQL's headers as {"Authorization": "Bearer <key>"}.
run: install-run
	$(BIN)/treegate migrate
	$(BIN)/treegate seed --trees $(DEMO_TREES) --if-empty
	@$(BIN)/treegate keys create --name dev-admin --role admin --replace
	$(BIN)/treegate serve

# Start the demo over: deletes the demo database (only that: never one TREEGATE_DATABASE_URL
# names), so that the next `make run` seeds it afresh and the README's examples answer as shown.
reset-demo:
	@if [ -n "$$TREEGATE_DATABASE_URL" ]; then \
		echo "TREEGATE_DATABASE_URL is set: reset-demo deletes only the demo's $(DEMO_DB)"; exit 1; \
	fi
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	@echo "deleted $(DEMO_DB): the next make run seeds the demo data again"

# docs/dashboard.png: the dashboard on the demo data `make run` serves, in headless Chromium.
screenshot: install browser
	$(BIN)/python scripts/dashboard_screenshot.py --trees $(DEMO_TREES) --output docs/dashboard.png

# The GraphQL-over-HTTP audit (npm's graphql-http, pinned by its lock file) runs under Node.js.
AUDIT_DIR := tests/e2e/audit
AUDIT_STAMP := $(AUDIT_DIR)/node_modules/.package-lock.json

audit-tools: $(AUDIT_STAMP)

$(AUDIT_STAMP): $(AUDIT_DIR)/package.json $(AUDIT_DIR)/package-lock.json
	npm ci --prefix $(AUDIT_DIR) --no-audit --no-fund --loglevel=error

# Every test, with line and branch coverage of the product's packages; below the floor in
# pyproject.toml ([tool.coverage.report] fail_under) the run fails.
test: install browser audit-tools redis
	$(BIN)/python -m pytest --cov --cov-report=term

# The whole suite RUNS times in a row (default 5) while one process per core keeps the CPU busy:
# how timing-dependent tests are found. Stops at the first failure.
RUNS ?= 5
test-under-load: install browser audit-tools redis
	$(BIN)/python scripts/test_under_load.py --runs $(RUNS) $(ARGS)

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schema: install
	$(BIN)/treegate export-schema

# The benchmark (not part of `make test`): seeds or reuses a PostgreSQL database, serves Treegate,
# PostGraphile 5 (npm packages pinned by bench/postgraphile's lock file, Node.js 22 among them)
# and a raw ceiling server, loads them with wrk (apt-get installs it when missing) and prints a
# table. Flags go through ARGS, e.g. `make bench ARGS="--duration 5"` (README: Benchmarks).
BENCH_PEER_DIR := bench/postgraphile
BENCH_PEER_STAMP := $(BENCH_PEER_DIR)/node_modules/.package-lock.json

bench-tools: $(BENCH_PEER_STAMP)

$(BENCH_PEER_STAMP): $(BENCH_PEER_DIR)/package.json $(BENCH_PEER_DIR)/package-lock.json
	npm ci --prefix $(BENCH_PEER_DIR) --no-audit --no-fund --loglevel=error

bench: install bench-tools
	$(BIN)/python -m bench.run $(ARGS)

# The soak run (not part of `make test`): ten minutes of mixed load on a throwaway PostgreSQL
# cluster restarted every two minutes; errors by kind, recovery times, invariants (README:
# Operations). Flags through ARGS, e.g. `make soak ARGS="--minutes 2 --restart-every 30"`.
soak: install
	$(BIN)/python -m bench.soak $(ARGS)

# `treegate import` at oasst2's size (70,000 trees, 210,000 messages) into PostgreSQL, against a
# tenth of it as the baseline: trees/s and peak memory (README: Importing and exporting).
bench-import: install
	$(BIN)/python -m bench.import_scale $(ARGS)

# Two `treegate serve` processes on one PostgreSQL database with caches of 30 s: how soon a write
# through one shows in the other's cached answers (README: Operations). `transitionTrees`' speed on
# both databases (README: Bulk moderation).
bench-coherence: install
	$(BIN)/python -m bench.coherence $(ARGS)

bench-bulk: install
	$(BIN)/python -m bench.bulk_throughput $(ARGS)

clean:
	rm -rf $(VENV) .uv .pytest_cache .mypy_cache .ruff_cache .coverage
