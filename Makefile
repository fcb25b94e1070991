# Everything a fresh machine needs: `make run` and `make test` create .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run install install-test test lint format clean bench browser-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files make the install re-run whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/relayflow serve --host $(HOST) --port $(PORT)

lint: install-test
	$(BIN)/ruff check src tests fake8x8
	$(BIN)/ruff format --check src tests fake8x8
	$(BIN)/mypy

format: install-test
	$(BIN)/ruff format src tests fake8x8
	$(BIN)/ruff check --fix src tests fake8x8

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

# tests/browser needs Debian's headless Chromium (never a downloaded browser build). Installed
# only when /usr/bin/chromium is missing and we are root with apt-get; otherwise left alone (the
# browser tests then skip, or fail under CI=true). .ci/run calls this before `make test`.
browser-deps:
	@if [ -x /usr/bin/chromium ]; then \
		echo "browser-deps: $$(/usr/bin/chromium --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	else \
		echo "browser-deps: /usr/bin/chromium missing and not root with apt-get; not installed"; \
	fi

# Benchmarks (bench/RESULTS.md): quick by default, `make bench FULL=1` for issue 5's sizes;
# BENCH_ARGS passes more, e.g. BENCH_ARGS="--only W1,DBOS --db sqlite". Never part of `make test`.
bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.run $(if $(FULL),--full,--quick) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
