"""The marts' dbt tests catch what they claim: each mutation of correctly built marts (a day
deleted, a window row lost, spend doubled, ids or names nulled, marts emptied) fails `dbt test`,
and the named test is among the failures; the unmutated marts pass.

The marts are built once, from the Singer fixture, into schemas of this module's own (unique
names, dropped afterwards) of the test database; a pristine copy restores them after each
mutation. `dbt test` runs against the marts as they are (no rebuild in between), which is the
point: completeness must be computed when tested, not read from a table built earlier.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from meta_elt import postgres
from tests.support import FIXTURES, ROOT, dbt_worker, meltano

MARTS = ("meta_insights_daily", "meta_insights_levels", "meta_insights_coverage")


def fixture_reports_vars() -> str:
    """The `--vars` the Makefile builds the fixture with (FIXTURE_REPORTS), read, not copied."""
    match = re.search(r"^FIXTURE_REPORTS := (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "Makefile defines FIXTURE_REPORTS"
    return match.group(1).strip()


# Helpers shared with tests/test_dbt_incremental.py.


def dbt_env(server: postgres.Server, raw: str, work: Path) -> dict[str, str]:
    """The environment of a dbt run on raw schema `raw`, with logs in `work` (the target schema
    and target path are per run: see run_dbt)."""
    return {
        **os.environ,
        **server.libpq_env(),
        # the raw schema: target-postgres's setting, which dbt reads too (META_RAW_SCHEMA before)
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": raw,
        "META_RAW_SCHEMA": raw,
        "DBT_PROJECT_DIR": str(ROOT / "transform"),
        "DBT_PROFILES_DIR": str(ROOT / "transform" / "profiles"),
        "DBT_LOG_PATH": str(work / "logs"),
    }


def run_dbt(
    env: dict[str, str], schema: str, target_path: Path, *args: str, reuse_manifest: bool = False
) -> subprocess.CompletedProcess:
    """dbt (Meltano's dbt-postgres venv, without Meltano's start-up) building into `schema`
    (staging views in <schema>_staging), with its own target path (partial parse, results), in
    this test process's dbt worker (tests/dbt_worker.py: dbt imported once, not at every
    command); ``reuse_manifest``: parsed once for all the commands of the same env and vars."""
    return dbt_worker().run(
        list(args),
        {**env, "DBT_TARGET_SCHEMA": schema, "DBT_TARGET_PATH": str(target_path)},
        reuse_manifest=reuse_manifest,
    )


def load_raw(server: postgres.Server, env: dict[str, str], fixture: Path) -> None:
    """Load a Singer fixture through Meltano's target-postgres into env's raw schema, as
    `make dbt-build` does (Meltano's system database, in the test database, migrated first)."""
    migrated = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "meta-elt"), "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    raw = env["TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"]
    loaded = meltano(
        "invoke",
        "target-postgres",
        server=server,
        env={"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": raw, "META_RAW_SCHEMA": raw},
        stdin=fixture.read_bytes(),
    )
    assert loaded.returncode == 0, loaded.stderr.decode()[-3000:]


def drop_schemas(server: postgres.Server, *names: str) -> None:
    with server.connect(autocommit=True) as conn:
        for name in names:
            conn.execute(f'drop schema if exists "{name}" cascade')


@dataclass
class Marts:
    server: postgres.Server
    schema: str  # the marts (DBT_TARGET_SCHEMA); staging is <schema>_staging
    pristine: str  # a copy of the marts as built
    env: dict[str, str]
    target_path: Path

    def dbt(
        self, *args: str, target_path: Path | None = None, reuse_manifest: bool = False
    ) -> subprocess.CompletedProcess:
        return run_dbt(
            self.env,
            self.schema,
            target_path or self.target_path,
            *args,
            reuse_manifest=reuse_manifest,
        )

    def execute(self, *statements: str) -> None:
        with self.server.connect() as conn:  # one transaction, committed on exit
            for statement in statements:
                conn.execute(statement.format(s=f'"{self.schema}"'))

    def restore(self) -> None:
        statements = []
        for mart in MARTS:
            statements.append(f"truncate {{s}}.{mart}")
            statements.append(f'insert into {{s}}.{mart} select * from "{self.pristine}".{mart}')
        self.execute(*statements)

    def test_marts(self) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
        """`dbt test` of the marts' data tests (no unit tests: they do not read the marts);
        returns the run and each test's status by name (hash suffix of generic tests dropped)."""
        done = self.dbt(
            "test",
            "--select",
            *MARTS,
            "--exclude",
            "test_type:unit",
            "--threads",
            "4",
            "--vars",
            fixture_reports_vars(),
            reuse_manifest=True,  # the marts' tests of every mutation: one parse
        )
        results = json.loads((self.target_path / "run_results.json").read_text())["results"]
        statuses = {
            r["unique_id"].split(".")[2]: r["status"]
            for r in results
            if r["unique_id"].startswith("test.")
        }
        return done, statuses


@pytest.fixture(scope="module")
def marts(pg_server: postgres.Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Marts]:
    suffix = uuid.uuid4().hex[:10]
    raw, schema, pristine = f"mut_{suffix}_raw", f"mut_{suffix}", f"mut_{suffix}_pristine"
    work = tmp_path_factory.mktemp("dbt_mutations")
    built = Marts(pg_server, schema, pristine, dbt_env(pg_server, raw, work), work / "target")
    try:
        load_raw(pg_server, built.env, FIXTURES / "raw_meta.singer.jsonl")
        done = built.dbt("run", "--full-refresh", "--vars", fixture_reports_vars())
        assert done.returncode == 0, done.stdout[-5000:]
        built.execute(
            f'create schema "{pristine}"',
            *(f'create table "{pristine}".{mart} as select * from {{s}}.{mart}' for mart in MARTS),
        )
        yield built
    finally:
        drop_schemas(pg_server, raw, schema, f"{schema}_staging", pristine)


@dataclass(frozen=True)
class Mutation:
    id: str
    statements: tuple[str, ...]  # SQL; {s} is the marts' schema
    expected: tuple[str, ...]  # tests (names, or name prefixes of generic tests) that must fail


DAILY, LEVELS = "{s}.meta_insights_daily", "{s}.meta_insights_levels"
LAST_DELIVERY_DAY = f"(select max(date) from {LEVELS} where level = 'account' and has_delivery)"


def first_daily(where: str) -> str:
    """A row of meta_insights_daily picked by the data itself: the smallest key matching."""
    return f"(select min(insights_daily_id) from {DAILY} where {where})"


def first_levels(where: str) -> str:
    return f"(select min(insights_level_id) from {LEVELS} where {where})"


MUTATIONS = [
    Mutation(
        "a-levels-day-deleted",
        (f"delete from {LEVELS} where date = {LAST_DELIVERY_DAY}",),
        ("covers_synced_days_meta_insights_levels_level",),
    ),
    Mutation(
        "b-daily-day-deleted",
        (f"delete from {DAILY} where date = {LAST_DELIVERY_DAY}",),
        (
            "covers_synced_days_meta_insights_daily_report_name",
            "assert_daily_has_every_attribution_window",
            "assert_daily_reconciles_with_levels",
        ),
    ),
    Mutation(
        "c-daily-window-row-deleted",
        (
            f"delete from {DAILY} where insights_daily_id = "
            + first_daily("attribution_window <> 'default'"),
        ),
        ("assert_daily_has_every_attribution_window",),
    ),
    Mutation(
        "d-daily-spend-doubled",
        (f"update {DAILY} set spend = spend * 2",),
        ("assert_daily_reconciles_with_levels",),
    ),
    Mutation(
        "e-daily-ids-and-currency-null",
        tuple(
            f"update {DAILY} set {column} = null where insights_daily_id = "
            + first_daily(f"level = '{level}'")
            for column, level in [
                ("campaign_id", "campaign"),
                ("adset_id", "adset"),
                ("ad_id", "ad"),
                ("currency", "adset"),
            ]
        ),
        tuple(
            f"not_null_meta_insights_daily_{column}"
            for column in ("campaign_id", "adset_id", "ad_id", "currency")
        ),
    ),
    Mutation(
        "f-levels-names-null",
        tuple(
            f"update {LEVELS} set {column} = null where insights_level_id = "
            + first_levels(f"level = '{level}'")
            for column, level in [
                ("campaign_name", "campaign"),
                ("adset_name", "adset"),
                ("ad_name", "ad"),
                ("account_name", "account"),
            ]
        ),
        tuple(
            f"not_null_meta_insights_levels_{column}"
            for column in ("campaign_name", "adset_name", "ad_name", "account_name")
        ),
    ),
    Mutation(
        "g-marts-empty",
        (f"truncate {DAILY}, {LEVELS}, {{s}}.meta_insights_coverage",),
        tuple(f"has_rows_when_source_has_rows_{mart}_" for mart in MARTS),
    ),
]


def _failed(statuses: dict[str, str], expected: str) -> bool:
    return any(name.startswith(expected) and status == "fail" for name, status in statuses.items())


def test_the_unmutated_marts_pass(marts: Marts):
    done, statuses = marts.test_marts()
    assert done.returncode == 0, done.stdout[-5000:]
    every_expected = {name for mutation in MUTATIONS for name in mutation.expected}
    for expected in every_expected:
        assert any(name.startswith(expected) for name in statuses), f"{expected} ran"
    assert set(statuses.values()) == {"pass"}, statuses


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.id)
def test_a_mutation_fails_the_named_test(marts: Marts, mutation: Mutation):
    marts.execute(*mutation.statements)
    try:
        done, statuses = marts.test_marts()
    finally:
        marts.restore()
    assert done.returncode != 0, f"{mutation.id}: every test passed"
    errors = {name for name, status in statuses.items() if status == "error"}
    assert not errors, f"tests that could not run: {errors}\n{done.stdout[-5000:]}"
    for expected in mutation.expected:
        assert _failed(statuses, expected), (
            f"{mutation.id}: {expected} did not fail; failed: "
            f"{sorted(n for n, s in statuses.items() if s == 'fail')}"
        )
        assert expected in done.stdout, f"dbt's output names {expected}"


def test_a_configured_report_without_raw_table_fails_the_build(marts: Marts, tmp_path: Path):
    """A report in var meta_insights_reports whose raw table does not exist stops the run with
    a message naming the table and the fix (it used to be read as empty, and every test passed).
    The project still parses with it (nothing is read at parse time): the error comes after
    dbt's "Found ..." line, when the staging model is compiled."""
    done = marts.dbt(
        "compile",
        "--select",
        "+meta_insights_daily",
        "--vars",
        "{meta_insights_reports: [ad, no_such_report]}",
        target_path=tmp_path,  # other vars: keep the module's partial parse
    )
    assert done.returncode != 0, "the missing report table fails the run"
    raw = marts.env["TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"]
    _, _, compiled = done.stdout.partition("Found ")
    assert compiled, f"the project parsed: {done.stdout[-3000:]}"
    assert f"{raw}.insights_no_such_report" in compiled, done.stdout[-3000:]
    assert "var meta_insights_reports" in compiled, done.stdout[-3000:]


def test_the_raw_schema_is_cached_before_any_model_looks_up_a_raw_table(
    marts: Marts, tmp_path: Path
):
    """dbt lists the raw schema into its relation cache on the first lookup and counts it as
    cached from the first table it adds: two threads looking up raw tables at once read a
    part-filled cache, and a staging view was built reading a loaded table as missing. The
    on-run-start hook (macros/meta_ads_raw.sql) does that first lookup, on the main thread.
    (`dbt compile` runs no hooks: its threads still look up the raw schema themselves.)"""
    env = {**marts.env, "DBT_LOG_PATH": str(tmp_path / "logs")}
    done = run_dbt(
        env, marts.schema, tmp_path / "target", "run", "--select", "path:models/staging",
        "--threads", "4", "--vars", fixture_reports_vars(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    raw = marts.env["TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"]
    log = (tmp_path / "logs" / "dbt.log").read_text()
    misses = [line for line in log.splitlines() if f'.{raw}", this is inefficient' in line]
    assert misses, "the run looked up the raw schema"
    in_threads = [line for line in misses if 'On "master"' not in line]
    assert not in_threads, in_threads[:3]
