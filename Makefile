# OneThing — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Every package, with its hash for each platform's file (requirements/*.txt, from `make lock`).
RUNTIME_LOCK := requirements/runtime.txt
DEV_LOCK     := requirements/dev.txt
PIP          := $(PY) -m pip --disable-pip-version-check

.PHONY: bench run test lint typecheck pytest pytest-postgres pg-start pg-stop system-deps clean lock

# Reinstall whenever the lock or pyproject.toml changes. Only what the lock names is installed,
# each file checked against its hash (a changed or substituted download is refused); then
# OneThing itself, built by the locked setuptools, with nothing resolved or fetched beside it.
$(STAMP): pyproject.toml $(DEV_LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r $(DEV_LOCK)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	@touch $@

# Regenerates both locks after a change to pyproject.toml's dependencies (or requirements/build.in):
# the image's (runtime: no extras) and make's (the `local` and `dev` extras too), for Python 3.11 on
# every platform, each pin with the hashes of all its files. Pins already in a lock are kept unless
# pyproject.toml asks otherwise; `make lock UPGRADE=1` moves the unpinned ones to their newest.
# uv runs from a throwaway venv (requirements/lock-tool.txt): installing never needs it.
LOCK_OPTIONS = --universal --python-version 3.11 --generate-hashes --quiet --custom-compile-command "make lock" \
	$(if $(UPGRADE),--upgrade)
lock:
	@tool=$$(mktemp -d) && trap 'rm -rf "$$tool"' EXIT && \
	$(PYTHON) -m venv "$$tool" && \
	"$$tool/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r requirements/lock-tool.txt && \
	"$$tool/bin/uv" pip compile $(LOCK_OPTIONS) pyproject.toml requirements/build.in -o $(RUNTIME_LOCK) && \
	"$$tool/bin/uv" pip compile $(LOCK_OPTIONS) --extra local --extra dev pyproject.toml requirements/build.in \
		-o $(DEV_LOCK) && \
	echo "wrote $(RUNTIME_LOCK) and $(DEV_LOCK)"

# Debian packages the tests need, installed when missing (as root; otherwise say how):
# libfaketime lets the time-skipping test server start on a chosen date, so tests can
# cross the real 2026 National Day holiday; chromium (and a CJK font for its screenshots)
# runs the web console's browser test through Playwright, which never downloads a browser.

system-deps:
	@missing=""; \
	ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || missing="$$missing libfaketime"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	test -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian packages:$$missing"; \
			(apt-get install -y -qq $$missing >/dev/null 2>&1 || \
			 (apt-get update -qq && apt-get install -y -qq $$missing >/dev/null)) ; \
		else \
			echo "missing Debian packages:$$missing: run 'sudo apt-get install$$missing'"; exit 1; \
		fi; \
	fi

run: $(STAMP)
	ONETHING_ENV=dev $(PY) cli.py run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy .

# The whole suite runs on SQLite; then the tests that go through the read model run
# again on PostgreSQL: the API suite, the migrations and the synthetic read model.
# Unit, workflow-only and end-to-end tests run on SQLite only, except the production
# topology (two workers, two APIs, a proxy), which needs PostgreSQL and runs only here.
POSTGRES_TESTS := tests/api tests/test_migrations.py tests/test_seed_read_model.py \
	tests/e2e/test_production_topology.py

pytest: $(STAMP) system-deps
	$(PY) cli.py catalogue validate
	$(PY) -m pytest
	@$(MAKE) --no-print-directory pytest-postgres

# A throwaway PostgreSQL server (.ci/postgres.sh; installs Debian's postgresql if
# missing), stopped when the tests end, whether they pass or not.
pytest-postgres: $(STAMP)
	@url=$$(bash .ci/postgres.sh start) || exit 1; \
	trap 'bash .ci/postgres.sh stop' EXIT; trap 'exit 130' INT TERM; \
	echo "ONETHING_TEST_POSTGRES_URL=$$url $(PY) -m pytest $(POSTGRES_TESTS)"; \
	ONETHING_TEST_POSTGRES_URL=$$url $(PY) -m pytest $(POSTGRES_TESTS)

# PostgreSQL for a developer: `export ONETHING_TEST_POSTGRES_URL=$(make -s pg-start)`.
pg-start:
	@bash .ci/postgres.sh start

pg-stop:
	@bash .ci/postgres.sh stop

test: lint typecheck pytest

# The benchmark (not part of `make test`; CI runs its 20-second smoke in pytest).
bench: $(STAMP)
	$(PY) -m bench.harness

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
