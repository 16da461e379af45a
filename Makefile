# Kafka Control Plane. `make run` starts it on this machine; `make test` runs the test suite.
# Both set up everything they need themselves (virtualenv, Python packages, test services).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run test lint format bench install system-test-deps migrate clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"' \
		|| { echo "error: $(PYTHON) is older than 3.11"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { echo "error: cannot create a virtualenv (on Debian: apt-get install python3-venv)"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --no-input

run: migrate
	$(BIN)/python manage.py bootstrap_demo --port $(PORT)
	$(BIN)/python manage.py serve --port $(PORT)

# Tools some tests drive for real: promtool (Prometheus rules) and Chromium (the dashboard).
system-test-deps:
	@bash scripts/install-system-test-deps.sh

test: install system-test-deps
	bash scripts/with-test-services.sh $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	bash scripts/with-test-services.sh $(BIN)/python -m bench

clean:
	rm -rf var/ .pytest_cache .ruff_cache
