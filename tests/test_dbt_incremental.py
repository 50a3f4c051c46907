"""Scenario (in the manner of Fivetran's integration_tests): an incremental build equals a full
refresh of the same data.

One raw schema of this module's own gets the Singer fixture in two loads: the first load
(tests/fixtures/raw_meta.singer.jsonl), then the second (raw_meta_increment.singer.jsonl: a
backfill of old dates, updated recent days, a new day, one tenant's copy of a shared account).
Schema `inc` is built after the first load and built again, incrementally, after the second;
schema `full` is built once with --full-refresh after both. Each mart must hold the same rows in
both, compared both ways with EXCEPT ALL (duplicates count).

The append-only loader path: the same loads, the first one twice (as a re-sync sends it), into
tables without a primary key that keep every version of a key
(transform/scripts/load_singer_fixture.py --append, as an append-only loader writes them), built
into `app`: staging dedupes, so each mart equals `full` but for the load times. All schemas are
dropped afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from meta_elt import postgres
from tests.support import FIXTURES, ROOT
from tests.test_dbt_mutations import (
    MARTS,
    dbt_env,
    drop_schemas,
    fixture_reports_vars,
    load_raw,
    run_dbt,
)

INCREMENTAL_MARTS = ("meta_insights_daily", "meta_insights_levels")


@dataclass
class Builds:
    server: postgres.Server
    incremental: str  # built after the first load, then incrementally after the second
    full: str  # one --full-refresh build after both loads
    raw_append: str  # the loads kept as every version of a key (no primary key)
    append: str  # built from raw_append with --full-refresh
    first_load_until: datetime  # the latest _loaded_at of the first build
    relations_kept: dict[str, bool]  # mart -> the incremental build kept its table
    raw: str  # the two loads, through the project's loader


def _relation_ids(conn, schema: str) -> dict[str, int]:
    return {
        mart: conn.execute("select %s::regclass::oid", (f'"{schema}".{mart}',)).fetchone()[0]
        for mart in INCREMENTAL_MARTS
    }


@pytest.fixture(scope="module")
def builds(
    pg_server: postgres.Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Builds]:
    suffix = uuid.uuid4().hex[:10]
    raw, incremental, full = f"inc_{suffix}_raw", f"inc_{suffix}_inc", f"inc_{suffix}_full"
    raw_append, append = f"inc_{suffix}_rawapp", f"inc_{suffix}_app"
    work = tmp_path_factory.mktemp("dbt_incremental")
    env = dbt_env(pg_server, raw, work)
    reports = fixture_reports_vars()
    try:
        load_raw(pg_server, env, FIXTURES / "raw_meta.singer.jsonl")
        done = run_dbt(env, incremental, work / "target_inc", "run", "--vars", reports)
        assert done.returncode == 0, done.stdout[-5000:]
        with pg_server.connect() as conn:
            before = _relation_ids(conn, incremental)
            first_load_until = conn.execute(
                f'select max(_loaded_at) from "{incremental}".meta_insights_daily'
            ).fetchone()[0]

        load_raw(pg_server, env, FIXTURES / "raw_meta_increment.singer.jsonl")
        done = run_dbt(env, incremental, work / "target_inc", "run", "--vars", reports)
        assert done.returncode == 0, done.stdout[-5000:]
        done = run_dbt(env, full, work / "target_full", "run", "--full-refresh", "--vars", reports)
        assert done.returncode == 0, done.stdout[-5000:]
        with pg_server.connect() as conn:
            after = _relation_ids(conn, incremental)
        kept = {mart: before[mart] == after[mart] for mart in INCREMENTAL_MARTS}

        append_env = dbt_env(pg_server, raw_append, work)
        for fixture in ("raw_meta", "raw_meta", "raw_meta_increment"):
            loaded = subprocess.run(
                [sys.executable, str(ROOT / "transform/scripts/load_singer_fixture.py"),
                 str(FIXTURES / f"{fixture}.singer.jsonl"), "--schema", raw_append, "--append"],
                env=append_env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert loaded.returncode == 0, loaded.stderr[-3000:]
        done = run_dbt(
            append_env, append, work / "target_app", "run", "--full-refresh", "--vars", reports
        )
        assert done.returncode == 0, done.stdout[-5000:]
        yield Builds(pg_server, incremental, full, raw_append, append, first_load_until, kept, raw)
    finally:
        drop_schemas(
            pg_server, raw, incremental, f"{incremental}_staging", full, f"{full}_staging",
            raw_append, append, f"{append}_staging",
        )  # fmt: skip


@pytest.mark.parametrize("mart", INCREMENTAL_MARTS)
def test_the_second_build_was_incremental(builds: Builds, mart: str):
    """Not a rebuild in disguise: the table was updated in place and holds the second load."""
    assert builds.relations_kept[mart], f"{mart}: the incremental build replaced the table"
    with builds.server.connect() as conn:
        (new_rows,) = conn.execute(
            f'select count(*) from "{builds.incremental}".{mart} where _loaded_at > %s',
            (builds.first_load_until,),
        ).fetchone()
    assert new_rows > 0, f"{mart}: no row of the second load"


def test_builds_leave_statistics_on_what_the_loads_and_the_builds_changed(builds: Builds):
    """The build analyzes the raw tables a load filled and the marts it filled itself
    (macros/meta_ads_statistics.sql), not waiting for autovacuum (off on some servers, a minute
    late on the others): ``last_analyze`` is set by an explicit ANALYZE only."""
    tables = ("insights_ad", "insights_campaign", *INCREMENTAL_MARTS)
    with builds.server.connect() as conn:
        analyzed = conn.execute(
            "select schemaname, relname, last_analyze is not null from pg_stat_user_tables "
            "where schemaname = any(%s) and relname = any(%s)",
            ([builds.raw, builds.full, builds.incremental], list(tables)),
        ).fetchall()
    expected = {(builds.raw, t) for t in tables[:2]} | {
        (schema, mart) for schema in (builds.full, builds.incremental) for mart in tables[2:]
    }
    assert {(schema, table) for schema, table, done in analyzed if done} == expected


@pytest.mark.parametrize("mart", MARTS)
def test_incremental_equals_full_refresh(builds: Builds, mart: str):
    with builds.server.connect() as conn:
        columns = [
            row[0]
            for row in conn.execute(
                "select column_name from information_schema.columns"
                " where table_schema = %s and table_name = %s order by ordinal_position",
                (builds.full, mart),
            ).fetchall()
        ]
        assert columns, f"{builds.full}.{mart} exists"
        select = ", ".join(f'"{column}"' for column in columns)
        (rows,) = conn.execute(f'select count(*) from "{builds.full}".{mart}').fetchone()
        assert rows > 0, f"{mart}: the full refresh built rows"
        differences = {}
        both_ways = ((builds.incremental, builds.full), (builds.full, builds.incremental))
        for only_in, other in both_ways:
            differences[only_in] = conn.execute(
                f'select {select} from "{only_in}".{mart}'
                f' except all select {select} from "{other}".{mart}'
                " limit 5"
            ).fetchall()
    assert differences == {builds.incremental: [], builds.full: []}, (
        f"{mart}: rows only in one build (incremental={builds.incremental}, "
        f"full refresh={builds.full}): {differences}"
    )


#: Columns that say when a row was loaded: they differ between two loads of the same data.
LOAD_TIMES = ("_loaded_at", "last_loaded_at")


@pytest.mark.parametrize("mart", MARTS)
def test_append_only_loads_build_the_same_marts(builds: Builds, mart: str):
    with builds.server.connect() as conn:
        (versions, keys) = conn.execute(
            "select count(*), count(distinct (tenant_id, account_id, date, ad_id))"
            f' from "{builds.raw_append}".insights_ad'
        ).fetchone()
        assert versions > keys, "the append-only raw table keeps several versions of a key"
        columns = [
            row[0]
            for row in conn.execute(
                "select column_name from information_schema.columns"
                " where table_schema = %s and table_name = %s order by ordinal_position",
                (builds.full, mart),
            ).fetchall()
            if row[0] not in LOAD_TIMES
        ]
        select = ", ".join(f'"{column}"' for column in columns)
        differences = {
            only_in: conn.execute(
                f'select {select} from "{only_in}".{mart}'
                f' except all select {select} from "{other}".{mart} limit 5'
            ).fetchall()
            for only_in, other in ((builds.append, builds.full), (builds.full, builds.append))
        }
    assert differences == {builds.append: [], builds.full: []}, (
        f"{mart}: rows only in one build (append-only={builds.append}, upsert={builds.full}): "
        f"{differences}"
    )
