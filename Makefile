# Kafka Control Plane. `make run` starts it on this machine; `make test` runs the test suite.
# Both set up everything they need themselves (virtualenv, Python packages, test services).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT
# The Apache Kafka versions the tests and benchmarks run (the supported versions, newest first).
TEST_KAFKA_VERSIONS ?= 4.4.0 4.3.2 3.9.2

.PHONY: run test test-vm lint format bench install system-deps kafka kube migrate clean axe

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

# System packages the tests and benchmarks run for real: PostgreSQL, Redis, a JDK and Maven (real
# Apache Kafka), Chromium (the dashboard) and promtool (the alert rules). Installed with apt-get.
system-deps:
	@bash scripts/install-system-deps.sh

# Fetch the default Apache Kafka distribution ahead of time (otherwise fetched on first use).
# `make kafka KAFKA_VERSIONS_TO_FETCH="4.4.0 3.9.2"` fetches several.
kafka: install
	$(BIN)/python -m provisioning.distribution fetch $(KAFKA_VERSIONS_TO_FETCH)

# kube-apiserver, kube-controller-manager, kube-scheduler and kwok for the kubernetes backend's tests,
# built once from their Go modules (needs Go; many minutes the first time) into
# ~/.cache/kafka-control-plane/kubernetes/<version>/; later runs find them there.
# helm (the chart's tests render and install controlplane/deploy/helm with it) is built the same way into
# ~/.cache/kafka-control-plane/helm/<version>/.
kube: install
	$(BIN)/python -m tests.support.kube_binaries build
	$(BIN)/python -m tests.support.helm_binary build

# axe-core, the accessibility engine the dashboard's browser tests inject into every page; installed
# with npm into .node/ (git-ignored), pinned here, reinstalled only when the pin changes.
AXE_CORE_VERSION := 4.14.1
AXE := .node/axe-core-$(AXE_CORE_VERSION)

$(AXE):
	@command -v npm >/dev/null 2>&1 || { echo "error: npm is needed for axe-core (on Debian: apt-get install npm)"; exit 1; }
	npm install --silent --no-audit --no-fund --prefix .node axe-core@$(AXE_CORE_VERSION)
	@touch $@

axe: $(AXE)

# The suite runs in TEST_PROCESSES processes (pytest-xdist), a module per process at a time: most of
# its time is spent waiting on brokers and workers, not computing, so even two cores keep three busy.
TEST_PROCESSES ?= 3

test: install system-deps axe
	$(BIN)/python -m provisioning.distribution fetch $(TEST_KAFKA_VERSIONS)
	$(BIN)/python -m tests.support.kube_binaries build
	$(BIN)/python -m tests.support.helm_binary build
	bash scripts/with-test-services.sh $(BIN)/pytest -n $(TEST_PROCESSES) --dist loadscope --durations=25 -m "not vm_playbooks" $(PYTEST_ARGS)

# The vm backend's tests on real hosts (network namespaces with their own sshd, reached over SSH): the
# end-to-end test `make test` runs too, and what is left out of `make test` for the suite's time
# (marker vm_playbooks, about half an hour more): the end-to-end upgrade and day-2 operations (scale
# out and in, replacements, self-healing) through the API, and the playbooks' whole repertoire
# (replacement, decommission, a second run changing nothing, a rolling restart and an upgrade under a
# producer).
test-vm: install system-deps
	$(BIN)/python -m provisioning.distribution fetch 4.3.2 4.4.0
	bash scripts/with-test-services.sh $(BIN)/pytest -n $(TEST_PROCESSES) --dist loadscope -m real_hosts $(PYTEST_ARGS) tests/provisioning

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install system-deps
	$(BIN)/python -m provisioning.distribution fetch $(TEST_KAFKA_VERSIONS)
	bash scripts/with-test-services.sh $(BIN)/python -m bench

clean:
	rm -rf var/ .pytest_cache .ruff_cache
