PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo demo-reset test lint typecheck pytest browser bench clean

$(BIN)/refundops: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/refundops
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The demo keeps its data in ./refundops-demo.db (SQLite; the first start writes a month of
# history into it). demo-reset deletes it and starts the demo on a new one.
DEMO_DB := refundops-demo.db
demo: $(BIN)/refundops
	$(BIN)/refundops demo

demo-reset: $(BIN)/refundops
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	$(BIN)/refundops demo

# Debian chromium (and a CJK font) drive the sandbox page in tests/e2e; installed when
# missing and we may, otherwise the browser tests skip and say why.
BROWSER_PACKAGES := chromium fonts-wqy-microhei fonts-noto-color-emoji
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi wqy; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null \
	      || (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null); \
	  else echo "chromium not installed: browser tests will skip"; fi; fi

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

pytest: $(VENV)/.dev browser
	$(BIN)/pytest -q

test: lint typecheck pytest

# Every benchmark in turn, on SQLite then PostgreSQL where both apply (about 55 minutes);
# docs/benchmarks.md has the results and what each measures.
bench: $(VENV)/.dev
	for db in sqlite postgres; do $(BIN)/python -m bench.ingest --db $$db; done
	$(BIN)/python -m bench.click
	for db in sqlite postgres; do $(BIN)/python -m bench.intercept --db $$db --rates 1,5,10,15; done
	$(BIN)/python -m bench.burst
	$(BIN)/python -m bench.connectors
	$(BIN)/python -m bench.backoffice --rates 5,10,15
	for db in sqlite postgres; do $(BIN)/python -m bench.digest --db $$db; done
	for db in sqlite postgres; do $(BIN)/python -m bench.memory --db $$db; done
	for db in sqlite postgres; do $(BIN)/python -m bench.queue --db $$db; done
	$(BIN)/python -m bench.noise

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
