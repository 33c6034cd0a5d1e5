# The two commands of the README. Both start with the idempotent set-up (deploy/setup.sh).
VENV ?= .venv

.PHONY: demo test setup lint typecheck bench

setup:
	@bash deploy/setup.sh

demo: setup
	@$(VENV)/bin/minewatch demo

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# mypy alone (the test suite runs it too: tests/architecture/test_types.py)
typecheck: setup
	@bash deploy/typecheck.sh
