"""Shared fixtures: the PostgreSQL server every test talks to."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from meta_elt import postgres
from tests.support import ROOT

# Seconds each long module took in pytest (-n 4 --dist loadfile, 2 cores, 2026-12-03, on the
# distribution's Python), used only to order the modules: longest first, so that the last module
# to start is a short one and no worker is left running a long scenario alone at the end. A
# module not listed counts as short. (xdist's own order, by number of tests, started the e2e
# scenarios, which have few tests, last: --no-loadscope-reorder in the Makefile keeps this.)
MODULE_SECONDS = {
    "tests/e2e/test_meta_elt_flow.py": 323,
    "tests/e2e/test_dagster.py": 264,
    "tests/e2e/test_runs_side_by_side.py": 216,
    "tests/e2e/test_database_outage.py": 189,
    "tests/e2e/test_plain_meltano.py": 180,
    "tests/e2e/test_tenant_isolation.py": 176,
    "tests/test_dbt_mutations.py": 154,
    "tests/e2e/test_crash_resume.py": 149,
    "tests/e2e/test_demo.py": 81,
    "extract/tap-meta-insights/tests/test_tap_sandbox.py": 66,
    "tests/test_loader_setup_race.py": 63,
    "tests/e2e/test_rollback_sync.py": 56,
    "tests/test_loader_copy.py": 52,
    "tests/test_toolchain.py": 37,
    "tests/test_dbt_incremental.py": 32,
    "extract/tap-meta-insights/tests/test_tap_meta_rules.py": 26,
    "tests/test_loader_background_load.py": 13,
    "tests/e2e/test_report_browser.py": 13,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first (MODULE_SECONDS); the others keep their order."""

    def seconds(item: pytest.Item) -> int:
        return MODULE_SECONDS.get(item.path.relative_to(ROOT).as_posix(), 0)

    items.sort(key=lambda item: -seconds(item))  # stable: tests keep their order in a module


@pytest.fixture(scope="session")
def pg_server() -> Iterator[postgres.Server]:
    """The project's PostgreSQL (PG* from `meta-elt with-postgres`, else local or embedded)."""
    with postgres.provide(os.environ.get("PGDATABASE", "meta_elt_test")) as server:
        # Meltano's system database is in this database (meltano.yml): bring it up to date once,
        # under meta-elt's lock, before any test runs plain `meltano`.
        migrated = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "meta-elt"), "migrate"],
            env={**os.environ, **server.libpq_env()},
            capture_output=True,
            text=True,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr[-2000:]
        yield server


@pytest.fixture
def scratch_schema(pg_server: postgres.Server) -> Iterator[str]:
    """A schema of this test's own, dropped afterwards (it was created here)."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield name
    with pg_server.connect(autocommit=True) as conn:
        conn.execute(f'drop schema if exists "{name}" cascade')
