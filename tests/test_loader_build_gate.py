"""A dbt build and the loaders of one database take turns: no batch commits while a build runs.

A build reads the raw tables once per model; rows committed between two models left the daily
mart without them and the levels mart with them, and the build's reconciliation test failed
(seen in `test_three_backfills_and_a_sync_side_by_side_all_succeed`: a sync's loads landing
during a backfill's build). Here the `dbt-build` lock (docs/CONTRACTS.md) is held as a build
holds it, and a loader's batch is seen waiting for it, with nothing committed, until it ends.
"""

from __future__ import annotations

import subprocess
import time
import uuid

from meta_elt import locks, postgres
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


def test_a_batch_waits_for_the_dbt_build_and_lands_after_it(pg_server: postgres.Server, tmp_path):
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
