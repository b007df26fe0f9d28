# `make demo` and `make test` do all set-up on a fresh machine: venv, install, services, migrations.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

DEMO_DRIVERS ?= 200
DEMO_DURATION ?= 1d
# The demo seeds logins, trains a small model if none exists, serves the API (/docs), WebSockets and the
# pipeline, prints their addresses, and keeps serving until Ctrl-C; DEMO_FLAGS=--exit-when-drained exits.
DEMO_FLAGS ?=

.PHONY: install browser monitoring demo test test-unit test-integration stack-down lint clean

install: $(STAMP) browser monitoring

# Debian's chromium for the console's browser tests (Playwright drives it by executable_path; its own browser
# download cannot work here). Best effort: without it those tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null \
	    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; } \
	    || echo "chromium could not be installed: the console's browser tests will skip"; \
	  else echo "chromium is missing (needs root and apt-get): the console's browser tests will skip"; fi; }

# Debian's Prometheus and Alertmanager: `autoins stack up` runs them (config in .autoins/), the alert rules' promtool
# tests and the Prometheus integration tests use them. Best effort, like chromium: without them those tests skip.
monitoring:
	@{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && \
	   command -v prometheus-alertmanager >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus prometheus-alertmanager >/dev/null \
	    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus prometheus-alertmanager >/dev/null; } \
	    || echo "prometheus/alertmanager could not be installed: the alerting tests will skip"; \
	  else echo "prometheus/alertmanager are missing (need root and apt-get): the alerting tests will skip"; fi; }

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	rm -f $(VENV)/.installed-* && touch $@

demo: install
	$(BIN)/autoins stack up
	$(BIN)/autoins migrate
	$(BIN)/autoins topics
	$(BIN)/autoins stack status
	$(BIN)/autoins demo --drivers $(DEMO_DRIVERS) --duration $(DEMO_DURATION) $(DEMO_FLAGS)

test: install
	$(BIN)/autoins stack up
	$(BIN)/python -m pytest -m unit -q
	$(BIN)/python -m pytest -m "not unit" -q

test-unit: install
	$(BIN)/python -m pytest -m unit -q

stack-down: install
	$(BIN)/autoins stack down

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
