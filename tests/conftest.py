"""Shared fixtures: the PostgreSQL server every test talks to."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from meta_elt import postgres
from tests.support import ROOT


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Dagster scenarios (one module, the longest) first, so that xdist hands them to a
    worker at the start and the other modules share the rest of the time."""
    first = {item.path for item in items if item.get_closest_marker("orchestration_e2e")}
    items.sort(key=lambda item: item.path not in first)  # stable: files keep their order


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
