# The two commands that matter: `make run` and `make test`. Both work from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The Kafka protocol's port (LOGLAB_KAFKA_PORT; 0: web app only).
KAFKA_PORT ?= $(or $(LOGLAB_KAFKA_PORT),9092)
# Server processes: more than one needs REDIS_URL (the in-memory channel layer is per process).
WORKERS ?= 1
# This checkout's own SECRET_KEY, made once (gitignored; config/settings.py reads it when
# SECRET_KEY is not set): with DEBUG off the settings refuse the built-in development key.
SECRET_KEY_FILE := .loglab-secret-key

.PHONY: run classroom check-workers test test-postgres setup deps dev-deps chromium kcat lint \
	bench screenshots clean

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

$(SECRET_KEY_FILE): | $(BIN)/python
	@umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(50))" > $@.tmp
	@mv $@.tmp $@
	@echo "Made $@: this checkout's SECRET_KEY (set SECRET_KEY to use another)."

setup: deps $(SECRET_KEY_FILE)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py lessons_load
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py collectstatic --noinput -v0

# Refused before anything is installed: several processes on the in-memory layer would each
# hold their own rooms' websockets, and a student's events would reach only some screens.
check-workers:
	@case "$(WORKERS)" in ''|*[!0-9]*|0) \
	  echo "WORKERS=$(WORKERS): give the number of server processes, a whole number from 1." >&2; \
	  exit 2;; esac
	@if [ "$(WORKERS)" -gt 1 ] && [ -z "$(REDIS_URL)" ]; then \
	  echo "WORKERS=$(WORKERS) needs REDIS_URL: the in-memory channel layer lives in one process," >&2; \
	  echo "so each process would see only its own websockets. Run Redis and start with" >&2; \
	  echo "  make run WORKERS=$(WORKERS) REDIS_URL=redis://127.0.0.1:6379/0" >&2; \
	  exit 2; fi

# 0.0.0.0 is where the server listens, not an address to open.
SHOWN_HOST = $(if $(filter 0.0.0.0,$(HOST)),127.0.0.1,$(HOST))

# LOGLAB_BIND_HOST lets the presenter view warn when phones cannot reach a loopback-only server;
# WEB_CONCURRENCY tells the settings how many processes share the channel layer.
run: check-workers setup
	@echo ""
	@echo "  LogLab is running on http://$(SHOWN_HOST):$(PORT)/ ($(WORKERS) server process(es))"
	@echo "  Demo room:           http://$(SHOWN_HOST):$(PORT)/r/KAFKA7/"
	@if [ "$(HOST)" = "0.0.0.0" ]; then for a in $$($(BIN)/python -m messaging.infra.addresses); do \
	  echo "  Phones on the LAN:   http://$$a:$(PORT)/"; done; fi
	@echo "  Kafka clients:       $(SHOWN_HOST):$(KAFKA_PORT) (docs/clients-kafka.md)"
	@echo ""
ifeq ($(WORKERS),1)
	LOGLAB_BIND_HOST=$(HOST) $(BIN)/python manage.py serve --host $(HOST) --port $(PORT) \
		--kafka-port $(KAFKA_PORT)
else
	@# Several web processes share Redis; one more process speaks Kafka beside them.
	LOGLAB_BIND_HOST=$(HOST) $(BIN)/python manage.py serve --kafka-only --host $(HOST) \
		--kafka-port $(KAFKA_PORT) & trap "kill $$!" EXIT; \
	LOGLAB_BIND_HOST=$(HOST) WEB_CONCURRENCY=$(WORKERS) $(BIN)/uvicorn config.asgi:application \
		--host $(HOST) --port $(PORT) --workers $(WORKERS) --lifespan off --no-access-log
endif

# A class on the LAN: every interface, so phones reach the join URL the presenter view shows.
classroom:
	@$(MAKE) --no-print-directory run HOST=0.0.0.0

chromium:
	@scripts/ensure-chromium

kcat:
	@scripts/ensure-kcat

# Two processes (pytest-xdist): the suite mostly waits on browsers, real clients and timers.
# loadfile keeps a file's tests in one process, as its module-scoped servers and rooms assume.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL = -n $(PYTEST_WORKERS) --dist loadfile

test: setup dev-deps chromium kcat lint
	$(BIN)/pytest $(PYTEST_PARALLEL) --ignore=tests/kafka_clients
	# Then the real Kafka clients, alone: they time session timeouts, locks and long polls,
	# which two cores shared with the browser tests stretch.
	$(BIN)/pytest -q tests/kafka_clients

# The database-facing tests again on the real PostgreSQL (DATABASE_URL's path).
POSTGRES_TEST_URL ?= postgres://postgres@127.0.0.1:5432/loglab
test-postgres: dev-deps $(SECRET_KEY_FILE)
	DATABASE_URL=$(POSTGRES_TEST_URL) $(BIN)/pytest $(PYTEST_PARALLEL) -q tests/services tests/api tests/test_views.py tests/live \
		tests/kafka_wire/test_classroom_logins.py \
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

# Reliability (bench/soak.py): writers on SQLite and PostgreSQL, kill -9, a Redis restart, a
# reconnect storm, on loopback with its own redis-server and database; writes docs/reliability.md.
.PHONY: soak
soak: deps $(SECRET_KEY_FILE)
	$(BIN)/python -m bench.soak
