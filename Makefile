# The two commands a newcomer needs: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help
# The interpreter of .venv, and so of Meltano's plugin venvs: a distribution's CPython 3.11-3.13
# when there is one with venv (Debian's and Ubuntu's are built with PGO and LTO and a statically
# linked interpreter), else python3 from PATH. pyenv's default build (no PGO/LTO, a shared
# libpython) ran the same processes 1.1-1.6x slower (docs/DECISIONLOG.md). PYTHON=... chooses.
PYTHON ?= $(shell for p in /usr/bin/python3.11 /usr/bin/python3.12 /usr/bin/python3.13; do \
	$$p -c 'import ensurepip, venv' 2>/dev/null && { echo $$p; exit; }; done; echo python3)
VENV := .venv
BIN := $(VENV)/bin
MELTANO := $(BIN)/meltano
export MELTANO_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1
# dbt's colours only on a terminal (make's stderr): no escape codes in CI logs and pipes.
export DBT_USE_COLORS ?= $(shell test -t 2 && echo true || echo false)
# Bytecode compiled once at install (uv, for .venv and, as meltano.yml's venv backend, for the
# plugins' venvs; compileall for the project's own editable sources), not at every start of a
# process: where PYTHONDONTWRITEBYTECODE is set (containers, CI), Python would otherwise compile
# every import of every meltano, tap, target and dbt process from source, about 1-2 s each.
export UV_COMPILE_BYTECODE := 1
SOURCES := src sandbox/meta_sandbox extract/tap-meta-insights/tap_meta_insights \
	load/target-postgres-window-state/target_postgres_window_state orchestrate/dagster/src
TEST_DATABASE ?= meta_elt_test
PLUGIN_FILES := meltano.yml $(wildcard extract/*.meltano.yml load/*.meltano.yml transform/*.meltano.yml \
	orchestrate/*.meltano.yml plugins/*/*.txt) extract/tap-meta-insights/pyproject.toml \
	load/target-postgres-window-state/pyproject.toml

.PHONY: help install browser test test-orchestrate check lint lint-quiet database-checks \
	database-checks-quiet sql-lint dbt-build pytest demo docs orchestrate clean

help:
	@echo "make demo   - the main job end to end on the Graph API sandbox and a local PostgreSQL"
	@echo "make test   - every check: pre-commit hooks (ruff, mypy, Meltano schema), dbt build on test data, sqlfluff, pytest"
	@echo "make install - the project venv (.venv) and Meltano's plugins (.meltano/)"
	@echo "make docs   - the dbt documentation site on http://127.0.0.1:8580 (after make demo)"
	@echo "make orchestrate - Dagster (webserver + daemon) on http://127.0.0.1:3000 until Ctrl-C"

# The project's Python environment, from uv.lock (uv itself is pinned in the lock).
$(BIN)/.synced: Makefile pyproject.toml uv.lock extract/tap-meta-insights/pyproject.toml sandbox/pyproject.toml \
	orchestrate/dagster/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv sync --frozen --quiet
	touch $@

# Meltano's plugin venvs (pins + constraints files under plugins/; no Meltano Hub). Installing
# needs no state, so no PostgreSQL: a scratch SQLite system database stands in for meltano.yml's.
.meltano/.installed: $(BIN)/.synced $(PLUGIN_FILES)
	MELTANO_DATABASE_URI=sqlite:///$(CURDIR)/.meltano/install.db $(MELTANO) install
	touch $@

install: .meltano/.installed
	@$(BIN)/python -m compileall -q -j 0 $(SOURCES) > /dev/null

# Everything runs against one PostgreSQL provided by `meta-elt with-postgres` (see README), in a
# database of this run's own (meta_elt_test_<random>, dropped afterwards): runs never collide.
# Headless Chromium from Debian for the report's browser check (tests/e2e/test_report_browser.py).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }

test: install browser
	$(BIN)/meta-elt with-postgres --scratch --database $(TEST_DATABASE) -- $(MAKE) --no-print-directory check

# The hooks (no database, one core), the dbt build and sqlfluff on the fixture (a database and a
# dbt target directory of their own) and pytest, side by side: the checks fill the cores pytest
# leaves idle while its first scenarios start. The checks keep their output in .cache/make-test/:
# a failing one prints all of it at once; the passing ones print a line per check after pytest,
# so that nothing breaks into pytest's progress.
CHECK_LOGS := .cache/make-test
# Four workers on 2 cores: the e2e scenarios spend part of their time waiting (a PostgreSQL stopped
# for 60 s, Dagster's daemon intervals, the sandbox's jobs), and a fourth fills those gaps.
PYTEST_WORKERS ?= 4
check:
	@rm -f $(CHECK_LOGS)/*.summary
	@$(MAKE) --no-print-directory -j3 lint-quiet database-checks-quiet pytest
	@cat $(CHECK_LOGS)/lint.summary $(CHECK_LOGS)/database-checks.summary

# $(call quietly,<name>,<command>,<grep -E pattern of the lines to keep>,<sed script for them>):
# the command's output in $(CHECK_LOGS)/<name>.log; the kept lines in <name>.summary if it passes,
# else the whole log and a FAILED line.
quietly = mkdir -p $(CHECK_LOGS) && $(2) > $(CHECK_LOGS)/$(1).log 2>&1 \
	&& { grep -E '$(3)' $(CHECK_LOGS)/$(1).log | sed '$(4)' > $(CHECK_LOGS)/$(1).summary; } \
	|| { cat $(CHECK_LOGS)/$(1).log; echo "$(1): FAILED (log: $(CHECK_LOGS)/$(1).log)"; exit 1; }

lint-quiet:
	@$(call quietly,lint,$(LINT),Passed|Skipped,s/^/lint: /)

database-checks-quiet:
	@$(call quietly,database-checks,$(DATABASE_CHECKS),$(DBT_KEEP),$(DBT_SED))

LINT = $(MAKE) --no-print-directory lint
DATABASE_CHECKS = $(BIN)/meta-elt with-postgres --scratch --database $(TEST_DATABASE)_dbt -- \
	env MAKEFLAGS= DBT_TARGET_PATH=$(CURDIR)/$(CHECK_LOGS)/dbt-target \
	$(MAKE) --no-print-directory database-checks
DBT_KEEP = Done\. PASS=|Passed
DBT_SED = s/^.*Done\./dbt build on the fixture:/; s/^sqlfluff/dbt SQL: sqlfluff/

# dbt-build, then sql-lint: both write the dbt target directory (dbt's, and sqlfluff's templater).
database-checks:
	$(MAKE) --no-print-directory dbt-build
	$(MAKE) --no-print-directory sql-lint

# The hooks of .pre-commit-config.yaml on every file: ruff, mypy, Meltano's config schema.
lint:
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

# Migrate the test database (an older one gets today's raw keys, as a user's would), load the Singer
# fixture through Meltano's target-postgres, then build and test the dbt project on it, with the
# fixture's breakdown report too; `dbt docs generate` must work.
FIXTURE_REPORTS := {meta_insights_reports: [ad, adset, campaign, campaign_age_gender]}
dbt-build:
	$(BIN)/meta-elt migrate
	$(MELTANO) invoke target-postgres < tests/fixtures/raw_meta.singer.jsonl
	$(MELTANO) invoke dbt-postgres:build --full-refresh --vars '$(FIXTURE_REPORTS)'
	$(MELTANO) invoke dbt-postgres:docs-generate --vars '$(FIXTURE_REPORTS)' > /dev/null

sql-lint:
	$(BIN)/pre-commit run --all-files --hook-stage manual sqlfluff

pytest:
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

# The Dagster code location's daemon scenarios alone (partition backfill, schedule tick, the UI in
# Chromium; part of `make test` too): about 2 minutes on an idle 2-core machine.
test-orchestrate: install browser
	$(BIN)/meta-elt with-postgres --scratch --database $(TEST_DATABASE) -- \
		$(BIN)/pytest -q -m orchestration_e2e tests/e2e/test_dagster.py

clean:
	rm -rf $(VENV) .meltano .cache transform/target transform/logs

# The main job end to end on the Graph API sandbox (see README): prints a summary, writes
# output/demo-report.html, and stops what it started.
demo: install
	$(BIN)/meta-elt demo $(if $(REPORT),--report $(REPORT))

# Dagster: the code location (orchestrate/dagster) with its webserver and daemon, storage in the
# schema `dagster` of the provided PostgreSQL (database PGDATABASE, default meta_elt), the sandbox
# with the demo world when no tenant token is set; http://127.0.0.1:$(DAGSTER_PORT) until Ctrl-C.
DAGSTER_PORT ?= 3000
orchestrate: install
	$(BIN)/meta-elt with-postgres -- $(BIN)/meta-elt-dagster serve --port $(DAGSTER_PORT) \
		--home $(CURDIR)/.cache/dagster

# The dbt docs of the marts as the demo built them (lineage, columns, tests, the report as an
# exposure), on http://127.0.0.1:8580 until Ctrl-C.
docs: install
	$(BIN)/meta-elt with-postgres -- bash -c '$(BIN)/meta-elt migrate && \
		$(MELTANO) invoke dbt-postgres:docs-generate && $(MELTANO) invoke dbt-postgres:docs-serve'
