# Every target installs what it needs, so each works on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test unit lint run kafka kafka-stop postgres bench schema clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

postgres:
	infra/scripts/postgres-up.sh

test: install postgres
	$(BIN)/pytest -q

unit: install
	$(BIN)/pytest -q tests/unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

kafka: install
	$(BIN)/nettask kafka start
	$(BIN)/nettask kafka topics

kafka-stop: install
	$(BIN)/nettask kafka stop

run: install
	$(BIN)/nettask run

schema: install
	$(BIN)/nettask schema

bench: install postgres
	$(BIN)/python -m bench.pipeline

clean:
	rm -rf var .pytest_cache .ruff_cache .hypothesis
