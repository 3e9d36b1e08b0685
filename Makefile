# The map of what a developer can do. `make run` and `make test` are all the set-up a fresh
# machine needs: they create the virtualenv and install the pinned dependencies first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test test-postgres lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/barrio db upgrade
	$(BIN)/barrio run --demo-without-token

demo: $(STAMP)
	$(BIN)/barrio demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-postgres: $(STAMP)
	TEST_DATABASE_URL=postgresql+asyncpg://root@127.0.0.1:5432/test $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
