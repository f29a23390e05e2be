# CertDesk: `make run` serves the app with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
export FLASK_APP := wsgi

.PHONY: run test test-pg install lint bench vendor-htmx clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

run: install
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python scripts/run_dev.py

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-pg: install
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/run.py

# Refresh the vendored htmx from the npm package (run by a maintainer; the file is committed).
vendor-htmx:
	cd /tmp && npm pack htmx.org@2 && tar xzf htmx.org-2*.tgz && cp package/dist/htmx.min.js $(CURDIR)/static/vendor/htmx-2.min.js

clean:
	rm -rf $(VENV) instance/certdesk.db
