# OneThing — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest system-deps clean

# Reinstall whenever pyproject.toml (the pinned dependencies) changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $@

# libfaketime lets the time-skipping test server start on a chosen date, so
# tests can cross the real 2026 National Day holiday.
system-deps:
	@if ! ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then \
			(apt-get install -y -qq libfaketime >/dev/null 2>&1 || \
			 (apt-get update -qq && apt-get install -y -qq libfaketime)) ; \
		else \
			echo "libfaketime is missing: run 'sudo apt-get install libfaketime'"; exit 1; \
		fi; \
	fi

run: $(STAMP)
	ONETHING_ENV=dev $(PY) cli.py run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy .

pytest: $(STAMP) system-deps
	$(PY) cli.py catalogue validate
	$(PY) -m pytest

test: lint typecheck pytest

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
