"""Raw tables created before tenant isolation get tenant_id in their primary key, nothing lost."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from meta_elt import migrations, postgres, runtime


def _key(conn, schema: str, table: str) -> list[str]:
    row = conn.execute(
        """
        select array(
            select att.attname
            from unnest(con.conkey) with ordinality as k(attnum, position)
            join pg_attribute as att on att.attrelid = con.conrelid and att.attnum = k.attnum
            order by k.position
        )
        from pg_constraint as con
        where con.contype = 'p' and con.conrelid = to_regclass(%s)
        """,
        (f'"{schema}"."{table}"',),
    ).fetchone()
    return list(row[0])


def test_legacy_raw_keys_gain_the_tenant_and_keep_every_row(
    pg_server: postgres.Server, scratch_schema: str
):
    with pg_server.connect() as conn:
        conn.execute(f'create schema "{scratch_schema}"')
        conn.execute(
            f'create table "{scratch_schema}".insights_ad (tenant_id text, account_id text, '
            "date date, ad_id text, spend numeric, primary key (account_id, date, ad_id))"
        )
        conn.execute(f'create table "{scratch_schema}".plain (id text primary key, tenant_id text)')
        conn.execute(f'alter table "{scratch_schema}".plain drop column tenant_id')
        conn.execute(
            f'insert into "{scratch_schema}".insights_ad values '
            "('a', 'act_1', '2026-01-01', '1', 1.5), (null, 'act_2', '2026-01-01', '1', 2)"
        )
        conn.commit()

        changes = migrations.tenant_keys(conn, scratch_schema)
        assert (
            len(changes) == 1
            and "insights_ad: primary key (account_id, date, ad_id)" in (changes[0])
        )
        assert _key(conn, scratch_schema, "insights_ad") == [
            "tenant_id", "account_id", "date", "ad_id",
        ]  # fmt: skip
        assert _key(conn, scratch_schema, "plain") == ["id"], "a table without tenant_id is left"
        rows = conn.execute(
            f'select tenant_id, account_id, spend from "{scratch_schema}".insights_ad order by 2'
        ).fetchall()
        assert [(r[0], r[1], float(r[2])) for r in rows] == [
            ("a", "act_1", 1.5),
            (migrations.NIL_TENANT, "act_2", 2.0),
        ]
        # The same account and day under another tenant is now its own row.
        conn.execute(
            f'insert into "{scratch_schema}".insights_ad values '
            "('b', 'act_1', '2026-01-01', '1', 9)"
        )
        assert migrations.tenant_keys(conn, scratch_schema) == [], "a second run changes nothing"


def _first_run(server: postgres.Server, start: threading.Barrier) -> None:
    start.wait()
    runtime.prepare_state_schema(server)


def test_first_runs_side_by_side_create_meltanos_schema_once(pg_server: postgres.Server):
    """Eight first runs into a new database at once: none fails on creating Meltano's schema
    (`create schema if not exists` races with itself on pg_namespace without the lock)."""
    database = f"meta_elt_schema_race_{uuid.uuid4().hex[:8]}"
    server = postgres.with_database(pg_server, database)
    try:
        for _ in range(5):
            with server.connect(autocommit=True) as conn:
                conn.execute(f"drop schema if exists {runtime.MELTANO_SCHEMA} cascade")
            start = threading.Barrier(8)
            with ThreadPoolExecutor(8) as pool:
                for future in [pool.submit(_first_run, server, start) for _ in range(8)]:
                    future.result()  # raises what a run raised
    finally:
        with pg_server.connect(database="postgres", autocommit=True) as conn:
            conn.execute(f"drop database if exists {database} with (force)")
