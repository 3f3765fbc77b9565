# flask-smstrack: `make run` sets up and starts the standalone app, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
# `make bench` runs the redirect on SQLite and on this PostgreSQL database (created if missing).
BENCH_PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/smstrack_bench
BIN := $(VENV)/bin

.PHONY: run test bench faults wheel clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -e '.[postgres,redis]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/flask --app wsgi smstrack quickstart --base-url $(or $(SMSTRACK_BASE_URL),http://$(HOST):$(PORT)) $(if $(DEMO),--demo)
	@echo "Serving on $(or $(SMSTRACK_BASE_URL),http://$(HOST):$(PORT))/smstrack/ (Ctrl-C stops)"
	$(BIN)/gunicorn --workers $(WORKERS) --bind $(HOST):$(PORT) --access-logfile - wsgi:app

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	$(BIN)/python bench/run.py --addresses 5000 --recipients 2000 --pg-url $(BENCH_PG_URL) --pg-worker-threads 8 $(BENCH_ARGS)
	$(BIN)/python bench/report_page.py
	$(BIN)/python bench/import_recipients.py

# The fault tests in their full form (the short forms run in `make test`).
faults: $(VENV)/.installed-test
	FLASK_SMSTRACK_FAULTS=full $(BIN)/python -m pytest -n 0 -s tests/faults tests/test_worker_e2e.py $(PYTEST_ARGS)

wheel: $(VENV)/.installed-test
	$(BIN)/python -m build --wheel --outdir dist

clean:
	rm -rf $(VENV) dist build .pytest_cache
