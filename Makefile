# CertDesk: `make run` serves the app with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
export FLASK_APP := wsgi

.PHONY: run test test-pg install messages lint bench vendor-htmx vendor-axe system-deps system-deps-run clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# Message catalogs: each translations/<lang>/LC_MESSAGES/messages.po is compiled to its .mo (see docs/i18n.md).
MO_FILES := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))

%.mo: %.po $(BIN)/.installed
	$(BIN)/pybabel compile -f -i $< -o $@

install: $(BIN)/.installed $(MO_FILES)

# After changing user-facing strings: collect them into translations/messages.pot and merge them into
# every catalog (new entries arrive untranslated; translate them, then `make install` compiles).
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output --omit-header \
	  -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations -N --ignore-obsolete -w 100

# What pip cannot give (Chromium, pdftoppm, Python's venv): installed from the package manager when
# root, otherwise one line says which command to run. See scripts/system-deps.sh.
system-deps:
	@PYTHON=$(PYTHON) sh scripts/system-deps.sh test

system-deps-run:
	@PYTHON=$(PYTHON) sh scripts/system-deps.sh run

run: system-deps-run install
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python scripts/run_dev.py

test: system-deps install
	$(BIN)/python scripts/with_redis.py $(BIN)/python -m pytest $(PYTEST_ARGS)

test-pg: system-deps install
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(BIN)/python scripts/with_redis.py $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/run.py

# Refresh the vendored htmx from the npm package (run by a maintainer; the file is committed).
vendor-htmx:
	cd /tmp && npm pack htmx.org@2 && tar xzf htmx.org-2*.tgz && cp package/dist/htmx.min.js $(CURDIR)/static/vendor/htmx-2.min.js

# Refresh the vendored axe-core (accessibility checks, injected by the browser tests only).
vendor-axe:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack -q axe-core@4 && tar xzf axe-core-4*.tgz \
	  && cp package/axe.min.js $(CURDIR)/static/vendor/axe.min.js \
	  && cp package/LICENSE $(CURDIR)/static/vendor/axe-core-LICENSE.txt \
	  && rm -rf $$tmp

clean:
	rm -rf $(VENV) instance/certdesk.db
