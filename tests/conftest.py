"""Shared fixtures: the PostgreSQL server every test talks to, and Meltano invocation."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from meta_elt import postgres

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


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


def meltano(
    *args: str, server: postgres.Server, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """Run the project's Meltano with the server's PG* variables."""
    full_env = {
        **os.environ,
        **server.libpq_env(),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        **(env or {}),
    }
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "meltano"), *args],
        cwd=ROOT,
        env=full_env,
        input=stdin,
        capture_output=True,
        check=False,
    )
