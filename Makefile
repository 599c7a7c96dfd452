# OneThing — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: bench run test lint typecheck pytest pytest-postgres pg-start pg-stop system-deps clean

# Reinstall whenever pyproject.toml (the pinned dependencies) changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $@

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
# Unit, workflow-only and end-to-end tests run on SQLite only.
POSTGRES_TESTS := tests/api tests/test_migrations.py tests/test_seed_read_model.py

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
