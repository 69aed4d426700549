# Fabric task runner. `make serve` and `make test` install everything on first use.
SHELL := /bin/bash
UV_VERSION := 0.13.9
# pyenv shims refuse versions not selected globally, so prefer the real interpreter path.
PY39 ?= $(firstword $(wildcard /root/.pyenv/versions/3.9*/bin/python3.9 $(HOME)/.pyenv/versions/3.9*/bin/python3.9) $(shell command -v python3.9 2>/dev/null))
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install serve worker test test-server test-sdk test-sdk-py39 lint format bench clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): uv.lock pyproject.toml sdk/pyproject.toml server/pyproject.toml | $(UV)
	$(UV) sync --frozen
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(VENV)/bin/fabric-server serve

worker: install
	$(VENV)/bin/fabric-server worker

# Test files run in parallel worker processes (each test has its own databases).
TEST_WORKERS ?= 2

test: install
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile sdk/tests server/tests tests
	$(MAKE) --no-print-directory test-sdk-py39

test-server: install
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile server/tests

test-sdk: install
	$(VENV)/bin/pytest -q sdk/tests

# The SDK promises Python >= 3.9: its unit tests also run on the oldest supported interpreter.
test-sdk-py39: | $(UV)
	@if [ -z "$(PY39)" ]; then echo "python3.9 not found: skipping the Python 3.9 SDK run"; exit 0; fi; \
	if [ ! -f .venv39/.installed ] || [ sdk/requirements-py39.txt -nt .venv39/.installed ]; then \
		$(UV) venv --quiet --python "$(PY39)" .venv39 && \
		$(UV) pip install --quiet --python .venv39/bin/python -r sdk/requirements-py39.txt -e sdk && \
		touch .venv39/.installed; \
	fi; \
	.venv39/bin/pytest -q -p no:cacheprovider sdk/tests

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy sdk/src server/src
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(VENV)/bin/python bench/sdk_overhead.py
	$(VENV)/bin/python bench/jobs.py
	$(VENV)/bin/python bench/workflows.py
	$(VENV)/bin/python bench/events.py
	$(VENV)/bin/python bench/provider_stream.py

clean:
	rm -rf $(VENV) .venv39 .tools .fabric
