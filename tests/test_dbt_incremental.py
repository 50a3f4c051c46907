"""Scenario (in the manner of Fivetran's integration_tests): an incremental build equals a full
refresh of the same data.

One raw schema of this module's own gets the Singer fixture in two loads: the first load
(tests/fixtures/raw_meta.singer.jsonl), then the second (raw_meta_increment.singer.jsonl: a
backfill of old dates, updated recent days, a new day, one tenant's copy of a shared account).
Schema `inc` is built after the first load and built again, incrementally, after the second;
schema `full` is built once with --full-refresh after both. Each mart must hold the same rows in
both, compared both ways with EXCEPT ALL (duplicates count). All schemas are dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from meta_elt import postgres
from tests.support import FIXTURES
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
    first_load_until: datetime  # the latest _loaded_at of the first build
    relations_kept: dict[str, bool]  # mart -> the incremental build kept its table


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
        yield Builds(pg_server, incremental, full, first_load_until, kept)
    finally:
        drop_schemas(pg_server, raw, incremental, f"{incremental}_staging", full, f"{full}_staging")


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
