# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The bot on the embedded default: SQLite ./digestbot.db, examples/articles, console output.
run: $(STAMP)
	$(BIN)/digestbot run

# Lint first, then the suite on SQLite; again on PostgreSQL when DATABASE_URL is set.
test: lint
	$(BIN)/python -m pytest -q
	@if [ -n "$$DATABASE_URL" ]; then \
		echo "== again on PostgreSQL ($$DATABASE_URL) =="; \
		DIGESTBOT_TEST_BACKEND=postgres $(BIN)/python -m pytest -q; \
	fi

# Style, types, and the layer contract (an upward import in bot/ fails here).
lint: $(STAMP)
	$(BIN)/ruff check bot tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) digestbot.db digestbot.db-wal digestbot.db-shm
