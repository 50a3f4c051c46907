"""Shared fixtures: the PostgreSQL server every test talks to."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from meta_elt import postgres


@pytest.fixture(scope="session")
def pg_server() -> Iterator[postgres.Server]:
    """The project's PostgreSQL (PG* from `meta-elt with-postgres`, else local or embedded)."""
    with postgres.provide(os.environ.get("PGDATABASE", "meta_elt_test")) as server:
        yield server


@pytest.fixture
def scratch_schema(pg_server: postgres.Server) -> Iterator[str]:
    """A schema of this test's own, dropped afterwards (it was created here)."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield name
    with pg_server.connect(autocommit=True) as conn:
        conn.execute(f'drop schema if exists "{name}" cascade')
