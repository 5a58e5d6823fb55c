# Two commands for a new user: `make run` (install, then start the bot) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run api worker test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/dogbot run

api: install
	$(BIN)/dogbot api

worker: install
	$(BIN)/dogbot worker

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/bench_model.py --write
	$(BIN)/python bench/bench_bot.py --write
	$(BIN)/python bench/bench_load.py --write
	$(BIN)/python bench/bench_api.py --write
	$(BIN)/python bench/bench_jobs.py
	$(BIN)/python bench/bench_memory.py --write

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
