# Two commands for a new user: `make run` (install, then start the bot) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

LOCALE := dogbot/locale

.PHONY: install run api worker test lint bench clean translations

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/pybabel compile -d $(LOCALE) -D dogbot
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

# After changing a message in bot/texts.py (or any _() text): refresh the template and every language's
# catalog, translate what is new in dogbot/locale/<language>/LC_MESSAGES/dogbot.po, then run this again
# to compile. tests/unit/test_i18n.py fails while a shipped language lacks a message.
translations: install
	$(BIN)/pybabel extract --no-location --omit-header -o $(LOCALE)/dogbot.pot bot dogbot
	$(BIN)/pybabel update --width 110 --ignore-obsolete -i $(LOCALE)/dogbot.pot -d $(LOCALE) -D dogbot
	$(BIN)/pybabel compile -d $(LOCALE) -D dogbot --statistics

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
