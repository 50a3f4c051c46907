"""A dbt build and the loaders of one database take turns: no batch commits while a build runs.

A build reads the raw tables once per model; rows committed between two models left the daily
mart without them and the levels mart with them, and the build's reconciliation test failed
(seen in `test_three_backfills_and_a_sync_side_by_side_all_succeed`: a sync's loads landing
during a backfill's build). Here the `dbt-build` lock (docs/CONTRACTS.md) is held as a build
holds it, and a loader's batch is seen waiting for it, with nothing committed, until it ends.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from meta_elt import locks, postgres
from tests.support import FIXTURES
from tests.test_loader_setup_race import _first_load, loader_command

DBT_BUILD = "dbt-build"


def _waiting_for(conn, key: int) -> list[str]:
    """The application names of the sessions waiting for the lock ``key`` shared."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    rows = conn.execute(
        "select a.application_name from pg_catalog.pg_locks as l "
        "join pg_catalog.pg_stat_activity as a on a.pid = l.pid "
        "where l.locktype = 'advisory' and not l.granted and l.classid = %s and l.objid = %s "
        "and l.objsubid = 1 and l.mode = 'ShareLock'",
        (unsigned >> 32, unsigned & 0xFFFFFFFF),
    ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def own_database(pg_server: postgres.Server) -> Iterator[postgres.Server]:
    """A database of the test's own: advisory locks are per database, and the loaders of tests
    running beside this one take the same `dbt-build` lock in the shared test database (one was
    seen as the waiting loader, and would fail the probe of the second test)."""
    server = postgres.with_database(pg_server, f"gate_{uuid.uuid4().hex[:10]}")
    yield server
    postgres.drop_database(server)


def test_a_batch_waits_for_the_dbt_build_and_lands_after_it(
    own_database: postgres.Server, tmp_path
):
    pg_server = own_database
    key = locks.key(DBT_BUILD)  # the loader computes it alike (docs/CONTRACTS.md)
    schema = f"gate_{uuid.uuid4().hex[:10]}"
    tenant = str(uuid.uuid4())
    command, env = loader_command(pg_server, tmp_path, schema)
    build = pg_server.connect(autocommit=True)
    watcher = pg_server.connect(autocommit=True)
    try:
        build.execute("select pg_advisory_lock(%s)", (key,))  # as meta-elt's build holds it
        loader = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert loader.stdin is not None
        loader.stdin.write(_first_load(tenant))
        loader.stdin.close()
        deadline = time.monotonic() + 120
        while not (waiting := _waiting_for(watcher, key)):
            assert loader.poll() is None, loader.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the loader never waited for the build"
            time.sleep(0.05)
        # What a build that waits for a batch names as the holder (meta-elt's locks.holder).
        assert waiting == ["target-postgres-window-state: loading a batch"]
        tables = watcher.execute(
            "select count(*) from information_schema.tables where table_schema = %s", (schema,)
        ).fetchone()
        if tables and tables[0]:
            loaded = watcher.execute(f'select count(*) from "{schema}".accounts').fetchone()
            assert loaded == (0,), "a batch committed while the build held its lock"
        build.execute("select pg_advisory_unlock(%s)", (key,))
        assert loader.wait(timeout=120) == 0, loader.stderr.read().decode()[-2000:]
        rows = watcher.execute(
            f'select count(*) from "{schema}".accounts where tenant_id::text = %s', (tenant,)
        ).fetchone()
        assert rows == (1,)
    finally:
        build.close()
        with watcher:
            watcher.execute(f'drop schema if exists "{schema}" cascade')


#: Runs the loader in its own virtualenv with every batch followed by a probe (could a dbt build
#: take its lock now?) and every use of the gate counted. JSON lines, to the file named by PROBES.
PROBING_LOADER = """
import json, os, psycopg
import target_postgres_window_state as loader
from target_postgres_window_state import build_gate
from target_postgres_window_state.build_gate import DBT_BUILD_LOCK

probe = psycopg.connect(autocommit=True)
load = loader.LoadStampedPostgresSink.process_batch

def process_batch(self, context):
    load(self, context)  # committed when it returns
    started = probe.execute("select pg_try_advisory_lock(%s)", (DBT_BUILD_LOCK,)).fetchone()[0]
    if started:
        probe.execute("select pg_advisory_unlock(%s)", (DBT_BUILD_LOCK,))
    with open(os.environ["PROBES"], "a") as out:
        out.write(json.dumps({"stream": self.stream_name, "build_could_start": started}) + "\\n")

loader.LoadStampedPostgresSink.process_batch = process_batch

held = build_gate.BuildGate.held

def count_holds(self, engine):
    with open(os.environ["PROBES"], "a") as out:
        out.write(json.dumps({"gate_taken": True}) + "\\n")
    return held(self, engine)

build_gate.BuildGate.held = count_holds
loader.TargetPostgresWindowState.cli()
"""


def _whole_fixture(tenant: str) -> bytes:
    """Every message of the fixture's Singer stream (539 records, 9 streams), for ``tenant``."""
    lines = []
    for line in (FIXTURES / "raw_meta.singer.jsonl").read_text().splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            message["record"]["tenant_id"] = tenant
        lines.append(json.dumps(message))
    return ("\n".join(lines) + "\n").encode()


def test_a_build_sees_all_of_a_drains_streams_or_none(own_database: postgres.Server, tmp_path):
    """One drain loads each stream in a transaction of its own. A lock per transaction let a
    build that asked between two of them start, and see ad sets without their campaigns (the
    side-by-side e2e test's `relationships_within_tenant` failure); held for the whole drain,
    the build waits until the drain ends. Probed after each committed batch of one drain."""
    pg_server = own_database
    schema = f"gate_{uuid.uuid4().hex[:10]}"
    command, env = loader_command(pg_server, tmp_path, schema)
    probes = tmp_path / "probes.jsonl"
    env = {**env, "PROBES": str(probes)}
    python = str(Path(command[0]).parent / "python")
    try:
        done = subprocess.run(
            [python, "-c", PROBING_LOADER, *command[1:]],
            input=_whole_fixture(str(uuid.uuid4())),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        lines = [json.loads(line) for line in probes.read_text().splitlines()]
        batches = [line for line in lines if "stream" in line]
        assert len({b["stream"] for b in batches}) >= 2, batches  # one drain, several streams
        assert not [b for b in batches if b["build_could_start"]], batches
        # The gate is taken per drain and per batch, never per record (it costs a connection
        # and three statements: taken after every record, the loader ran at 4,400 rows/s).
        taken = sum(1 for line in lines if "gate_taken" in line)
        assert taken <= 2 * len(batches), f"gate taken {taken} times for {len(batches)} batches"
    finally:
        with pg_server.connect(autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')
