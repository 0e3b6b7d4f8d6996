# callscope: `make demo` runs the product, `make test` runs the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast lint lock system-deps clean

$(STAMP): requirements.lock pyproject.toml tests/oidc/package-lock.json
	bash scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	npm ci --prefix tests/oidc --no-audit --no-fund --silent
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/callscope demo

# The whole suite on SQLite, then the tests that touch the database on a private PostgreSQL server;
# each pass spread over the machine's cores (one test file stays on one worker, so a module's
# processed calls are made once; the slowest files first, in the order tests/conftest.py gives).
PYTEST := $(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy
	$(PYTEST)
	bash scripts/test-services.sh $(PYTEST)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

# The part of the suite without the speech model, a browser or extra services
test-fast: $(STAMP)
	$(PYTEST) -m "not model and not browser and not services"

# Re-resolve the pinned dependencies (needs uv: pip install uv). Torch is pinned to its CPU
# build (scripts/lock-overrides.txt), found in the local wheel folder pip is configured with.
lock:
	uv pip compile pyproject.toml --extra test --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --find-links /opt/wheels \
		--override scripts/lock-overrides.txt --output-file requirements.lock

clean:
	rm -rf $(VENV) callscope-data
