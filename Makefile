# The two commands that matter: `make run` and `make test`. Both work from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-postgres setup deps dev-deps chromium lint bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: pip runs again only when a requirements file changes.
$(VENV)/.deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

deps: $(VENV)/.deps
dev-deps: $(VENV)/.dev-deps

setup: deps
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py lessons_load
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py collectstatic --noinput -v0

run: setup
	@echo ""
	@echo "  LogLab is running on http://$(HOST):$(PORT)/"
	@echo "  Demo room:           http://$(HOST):$(PORT)/r/KAFKA7/"
	@echo ""
	$(BIN)/uvicorn config.asgi:application --host $(HOST) --port $(PORT) --lifespan off --no-access-log

chromium:
	@scripts/ensure-chromium

test: setup dev-deps chromium lint
	$(BIN)/pytest

# The database-facing tests again on the real PostgreSQL (DATABASE_URL's path).
POSTGRES_TEST_URL ?= postgres://postgres@127.0.0.1:5432/loglab
test-postgres: dev-deps
	DATABASE_URL=$(POSTGRES_TEST_URL) $(BIN)/pytest -q tests/services tests/api tests/test_views.py tests/live \
		tests/classroom tests/lessons

# Style, then the architecture: lint-imports checks the layers of docs/architecture.md.
lint: dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: setup dev-deps chromium
	$(BIN)/python -m bench

screenshots: setup dev-deps chromium
	$(BIN)/python -m scripts.screenshots

clean:
	rm -rf $(VENV) staticfiles db.sqlite3* test-db.sqlite3*
