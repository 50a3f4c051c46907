"""dbt benchmark: a full build of the marts versus a daily incremental build.

    PGDATABASE=meta_elt_dbtdev python bench/dbt_benchmark.py [--accounts 20] [--days 1100]

1. Generates synthetic raw tables in a schema of its own (default raw_meta_bench) shaped exactly as
   MeltanoLabs target-postgres 0.8.1 writes them (text[]/jsonb[] arrays, timestamp without time
   zone _sdc columns, primary key on the stream key): per account 10 campaigns, 30 adsets and
   100 ads with a row per object and day at each level, monthly insights_windows, dimensions.
   Everything is stamped as loaded 30 hours ago.
2. `dbt build --full-refresh` (models and every test) into its own target schema
   (default analytics_bench) — timed.
3. Simulates the next daily sync: the last 28 days of every account re-extracted with changed
   numbers plus one new day, at every level, with a new _sdc_batched_at (what target-postgres's
   upsert leaves behind), and a window record for those 29 days.
4. `dbt build` (incremental) — timed; prints both figures, the ratio and per-model timings. Its
   arguments are those of the scheduled build (`dbt-postgres:build_meta` in
   transform/transformers.meltano.yml: data tests read this run's loads, no unit tests, nor what
   the marts' constraints enforce) unless --test-scope all (a plain `dbt build`).

Not a test: run by hand. Connects with the PG* variables; needs `dbt` (--dbt, default: Meltano's
dbt-postgres venv if installed, else `dbt` on PATH). Drops and recreates only its two schemas.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TRANSFORM = ROOT / "transform"
RUN_DIR = Path(tempfile.gettempdir()) / "meta_ads_dbt_benchmark"

try:
    import psycopg

    def connect():
        return psycopg.connect(autocommit=True)
except ImportError:  # psycopg2, as shipped with dbt-postgres
    import psycopg2

    def connect():
        conn = psycopg2.connect("")
        conn.autocommit = True
        return conn


INSIGHT_COLUMNS = """
    tenant_id text, account_id text not null, date date not null, level text, report_name text,
    action_report_time text, attribution_windows text[], breakdowns jsonb,
    campaign_id text {campaign_null}, campaign_name text, adset_id text {adset_null},
    adset_name text, ad_id text {ad_null}, ad_name text, account_name text,
    account_currency text, impressions bigint, reach bigint, clicks bigint,
    inline_link_clicks bigint, spend numeric, frequency numeric, ctr numeric, cpc numeric,
    cpm numeric, actions jsonb[], action_values jsonb[]
"""
SDC_COLUMNS = """
    _sdc_extracted_at timestamp, _sdc_received_at timestamp, _sdc_batched_at timestamp,
    _sdc_deleted_at timestamp, _sdc_sequence bigint, _sdc_table_version bigint,
    _sdc_sync_started_at bigint
"""
LEVEL_KEY = {"ad": "ad_id", "adset": "adset_id", "campaign": "campaign_id"}


def create_tables(cur, schema: str) -> None:
    cur.execute(f"drop schema if exists {schema} cascade")
    cur.execute(f"create schema {schema}")
    for level, key in LEVEL_KEY.items():
        nulls = {f"{lv}_null": ("not null" if lv == level else "") for lv in LEVEL_KEY}
        cols = INSIGHT_COLUMNS.format(**nulls)
        cur.execute(
            f"create table {schema}.insights_{level} ({cols}, {SDC_COLUMNS},"
            f" primary key (account_id, date, {key}))"
        )
    cur.execute(
        f"""create table {schema}.insights_windows (tenant_id text, account_id text not null,
        report_name text not null, level text, date_start date not null, date_stop date not null,
        rows bigint, completed_at timestamp, {SDC_COLUMNS},
        primary key (account_id, report_name, date_start, date_stop))"""
    )
    dim = "tenant_id text, account_id text, id text, name text, status text, effective_status text"
    dim += ", created_time timestamp, updated_time timestamp"
    cur.execute(
        f"create table {schema}.accounts ({dim}, currency text, timezone_name text,"
        f" {SDC_COLUMNS}, primary key (account_id))"
    )
    cur.execute(f"create table {schema}.campaigns ({dim}, {SDC_COLUMNS}, primary key (id))")
    cur.execute(
        f"create table {schema}.adsets ({dim}, campaign_id text, {SDC_COLUMNS}, primary key (id))"
    )
    cur.execute(
        f"create table {schema}.ads ({dim}, campaign_id text, adset_id text, {SDC_COLUMNS},"
        f" primary key (id))"
    )


#: The tenant of account number ``a`` (two tenants): the insights rows' and the dimensions'.
TENANT = (
    "case when a % 2 = 0 then '3f6c1e2a-8b1d-4c5e-9a7f-1b2c3d4e5f60' "
    "else '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d' end"
)


def ad_rows_sql(
    schema: str, accounts: int, first_day: str, last_day: str, loaded: str, factor: float
) -> str:
    """insert the ad level for a date range (upsert: the key's old row is replaced)."""
    return f"""
    insert into {schema}.insights_ad
    select
        {TENANT},
        'act_' || (1000 + a), d::date, 'ad', 'ad', 'impression',
        array['1d_view', '7d_click', '28d_click'], '{{}}'::jsonb,
        'c' || a || '_' || c, 'Kampanj ' || c || ' – Åäö', 's' || a || '_' || s,
        'Annonsgrupp ' || s, 'ad' || a || '_' || ad, 'Annons ' || ad,
        'Konto ' || a, 'SEK',
        m.impressions, (m.impressions * 0.8)::bigint, m.clicks, m.clicks / 2,
        m.spend, 1.25, round(100.0 * m.clicks / m.impressions, 6),
        round(m.spend / m.clicks, 6), round(1000 * m.spend / m.impressions, 6),
        array[
            jsonb_build_object('action_type', 'link_click', 'value', m.clicks / 2,
                               '7d_click', m.clicks / 2, '28d_click', m.clicks / 2),
            jsonb_build_object('action_type', 'purchase', 'value', m.purchases,
                               '1d_view', m.purchases / 2, '7d_click', m.purchases,
                               '28d_click', m.purchases + 1)
        ],
        array[jsonb_build_object('action_type', 'purchase', 'value', m.purchases * 199.5,
                                 '7d_click', m.purchases * 199.5)],
        '{loaded}', '{loaded}', '{loaded}', null,
        (extract(epoch from '{loaded}'::timestamp) * 1e6)::bigint + a, null, null
    from generate_series(1, {accounts}) as a
    cross join generate_series('{first_day}'::date, '{last_day}'::date, interval '1 day') as d
    cross join generate_series(1, 100) as ad
    cross join lateral (
        select (ad - 1) % 30 + 1 as s, ((ad - 1) % 30) % 10 + 1 as c,
               abs(hashtext(a || '/' || d::date || '/' || ad)) as h
    ) as k
    cross join lateral (
        select 100 + k.h % 5000 as impressions, 1 + k.h % 97 as clicks,
               round((20 + k.h % 7000 / 100.0) * {factor}, 2) as spend, k.h % 4 as purchases
    ) as m
    on conflict (account_id, date, ad_id) do update set
        spend = excluded.spend, impressions = excluded.impressions, clicks = excluded.clicks,
        actions = excluded.actions, action_values = excluded.action_values,
        _sdc_batched_at = excluded._sdc_batched_at, _sdc_sequence = excluded._sdc_sequence,
        _sdc_extracted_at = excluded._sdc_extracted_at
    """


def parent_rows_sql(
    schema: str, level: str, child: str, first_day: str, last_day: str, loaded: str
) -> str:
    """adset/campaign rows as the sums of their children (so the levels reconcile)."""
    blank = "null, null" if level == "campaign" else "adset_id, max(adset_name)"
    group = "campaign_id" if level == "campaign" else "campaign_id, adset_id"
    key = LEVEL_KEY[level]
    return f"""
    insert into {schema}.insights_{level}
    select
        max(tenant_id), account_id, date, '{level}', '{level}', 'impression',
        array['1d_view', '7d_click', '28d_click'], '{{}}'::jsonb,
        campaign_id, max(campaign_name), {blank}, null, null, max(account_name), 'SEK',
        sum(impressions), (sum(reach) * 0.9)::bigint, sum(clicks), sum(inline_link_clicks),
        sum(spend), 1.3, null, null, null,
        array[
            jsonb_build_object('action_type', 'link_click', 'value', sum(inline_link_clicks),
                               '7d_click', sum(inline_link_clicks)),
            jsonb_build_object('action_type', 'purchase',
                               'value', sum((actions[2] ->> 'value')::int),
                               '7d_click', sum((actions[2] ->> '7d_click')::int))
        ],
        array[jsonb_build_object('action_type', 'purchase',
                                 'value', sum((action_values[1] ->> 'value')::numeric))],
        '{loaded}', '{loaded}', '{loaded}', null,
        (extract(epoch from '{loaded}'::timestamp) * 1e6)::bigint, null, null
    from {schema}.insights_{child}
    where date between '{first_day}' and '{last_day}'
    group by account_id, date, {group}
    on conflict (account_id, date, {key}) do update set
        spend = excluded.spend, impressions = excluded.impressions, clicks = excluded.clicks,
        inline_link_clicks = excluded.inline_link_clicks, actions = excluded.actions,
        action_values = excluded.action_values, _sdc_batched_at = excluded._sdc_batched_at,
        _sdc_sequence = excluded._sdc_sequence
    """


def windows_sql(
    schema: str, accounts: int, first_day: str, last_day: str, loaded: str, monthly: bool
) -> str:
    if monthly:
        spans = f"""select greatest(m::date, '{first_day}'::date) as start_day,
                           least((m + interval '1 month - 1 day')::date, '{last_day}'::date)
                               as stop_day
                    from generate_series(date_trunc('month', '{first_day}'::date),
                                         '{last_day}'::date, interval '1 month') as m"""
    else:
        spans = f"select '{first_day}'::date as start_day, '{last_day}'::date as stop_day"
    return f"""
    insert into {schema}.insights_windows
    select {TENANT}, 'act_' || (1000 + a), r.report, r.report, w.start_day, w.stop_day,
           0, '{loaded}', '{loaded}', '{loaded}', '{loaded}', null, 1, null, null
    from generate_series(1, {accounts}) as a
    cross join (values ('ad'), ('adset'), ('campaign')) as r (report)
    cross join ({spans}) as w
    on conflict (account_id, report_name, date_start, date_stop) do update set
        _sdc_batched_at = excluded._sdc_batched_at
    """


def dims_sql(schema: str, accounts: int, loaded: str) -> list[str]:
    sdc = f"'{loaded}', '{loaded}', '{loaded}', null, 1, null, null"
    acc = "'act_' || (1000 + a)"
    return [
        f"""insert into {schema}.accounts select {TENANT}, {acc}, {acc}, 'Konto ' || a, 'ACTIVE',
            'ACTIVE', null, null, 'SEK', 'Europe/Stockholm', {sdc}
            from generate_series(1, {accounts}) as a""",
        f"""insert into {schema}.campaigns select {TENANT}, {acc}, 'c' || a || '_' || c,
            'Kampanj ' || c, 'ACTIVE', 'ACTIVE', null, null, {sdc}
            from generate_series(1, {accounts}) as a cross join generate_series(1, 10) as c""",
        f"""insert into {schema}.adsets select {TENANT}, {acc}, 's' || a || '_' || s,
            'Annonsgrupp ' || s, 'ACTIVE', 'ACTIVE', null, null,
            'c' || a || '_' || ((s - 1) % 10 + 1), {sdc}
            from generate_series(1, {accounts}) as a cross join generate_series(1, 30) as s""",
        f"""insert into {schema}.ads select {TENANT}, {acc}, 'ad' || a || '_' || ad,
            'Annons ' || ad, 'ACTIVE', 'ACTIVE', null, null,
            'c' || a || '_' || (((ad - 1) % 30) % 10 + 1), 's' || a || '_' || ((ad - 1) % 30 + 1),
            {sdc}
            from generate_series(1, {accounts}) as a cross join generate_series(1, 100) as ad""",
    ]


def load(cur, schema, accounts, first_day, last_day, loaded, factor, monthly) -> None:
    cur.execute(ad_rows_sql(schema, accounts, first_day, last_day, loaded, factor))
    cur.execute(parent_rows_sql(schema, "adset", "ad", first_day, last_day, loaded))
    cur.execute(parent_rows_sql(schema, "campaign", "adset", first_day, last_day, loaded))
    cur.execute(windows_sql(schema, accounts, first_day, last_day, loaded, monthly))
    for table in ("insights_ad", "insights_adset", "insights_campaign", "insights_windows"):
        cur.execute(f"analyze {schema}.{table}")


def find_dbt(explicit: str | None) -> str:
    if explicit:
        return explicit
    meltano_dbt = ROOT / ".meltano" / "utilities" / "dbt-postgres" / "venv" / "bin" / "dbt"
    if meltano_dbt.exists():
        return str(meltano_dbt)
    found = shutil.which("dbt")
    if not found:
        sys.exit("dbt not found: pass --dbt /path/to/dbt (or run `make install`)")
    return found


def scheduled_build_args() -> list[str]:
    """The arguments of `dbt-postgres:build_meta` (transform/transformers.meltano.yml) after
    `build`: what `meta-elt sync` and Dagster's marts build run."""
    config = yaml.safe_load((TRANSFORM / "transformers.meltano.yml").read_text())
    for utility in config["plugins"]["utilities"]:
        command = (utility.get("commands") or {}).get("build_meta")
        if command:
            args = shlex.split(command["args"] if isinstance(command, dict) else command)
            assert args[0] == "build", args
            return args[1:]
    sys.exit("transform/transformers.meltano.yml: no dbt-postgres command build_meta")


def dbt_build(
    dbt: str, env: dict, full_refresh: bool, test_scope: str = "all"
) -> tuple[float, dict[str, float]]:
    # own target/log paths: another dbt run in transform/ must not overwrite run_results.json
    args = [dbt, "build", "--profiles-dir", "profiles", "--target-path", str(RUN_DIR / "target")]
    args += ["--log-path", str(RUN_DIR / "logs")]
    if full_refresh:
        args.append("--full-refresh")
    if test_scope != "all":  # the scheduled build itself (Meltano's build_meta command): tests
        # read this run's loads, no unit tests, nor the checks the marts' constraints enforce
        args += scheduled_build_args()
    # The per-node times come from run_results.json, which the scheduled build does not write
    # (--no-write-json): written here all the same (the last flag wins), which makes the timed
    # run a little slower than the scheduled one (about 6 % of a small build's CPU); a stale file
    # of an earlier run is never read.
    args.append("--write-json")
    (RUN_DIR / "target" / "run_results.json").unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=TRANSFORM, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stdout[-5000:], proc.stderr[-2000:], sep="\n")
        sys.exit(f"dbt build failed (exit {proc.returncode})")
    results = json.loads((RUN_DIR / "target" / "run_results.json").read_text())
    timings = {r["unique_id"]: r["execution_time"] for r in results["results"]}
    return elapsed, timings


def summarise(timings: dict[str, float]) -> str:
    models = {k.split(".")[-1]: v for k, v in timings.items() if k.startswith("model.")}
    tests = sum(v for k, v in timings.items() if k.startswith(("test.", "unit_test.")))
    marts = ", ".join(
        f"{name} {models[name]:.1f}s"
        for name in ("meta_insights_daily", "meta_insights_levels")
        if name in models
    )
    return f"{marts}; tests {tests:.1f}s (summed over threads)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--days", type=int, default=1100, help="history per account")
    parser.add_argument("--lookback-days", type=int, default=28)
    parser.add_argument("--raw-schema", default="raw_meta_bench")
    parser.add_argument("--target-schema", default="analytics_bench")
    parser.add_argument("--dbt", help="dbt executable")
    parser.add_argument("--skip-generate", action="store_true", help="reuse the raw schema")
    parser.add_argument(
        "--skip-full",
        action="store_true",
        help="only the daily sync and the incremental build (the marts must exist)",
    )
    parser.add_argument(
        "--test-scope",
        choices=["recent", "all"],
        default="recent",
        help="data tests of the incremental build: this run's loads (as the scheduled sync "
        "runs them) or the whole marts",
    )
    args = parser.parse_args()

    dbt = find_dbt(args.dbt)
    env = os.environ | {
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": args.raw_schema,
        "DBT_TARGET_SCHEMA": args.target_schema,
    }
    with connect() as conn:
        cur = conn.cursor()
        cur.execute("select current_date - 2, current_database()")
        last_day, database = cur.fetchone()
        first_day = f"{last_day} - {args.days - 1}"
        cur.execute(f"select (date '{last_day}' - {args.days - 1})::text")
        first_day = cur.fetchone()[0]
        # Loaded a day and a bit ago: before the daily sync, and within the freshness test's
        # 36 hours (assert_every_account_synced_recently), as a daily job's history is.
        cur.execute("select (now() - interval '30 hours')::timestamp::text")
        old_load = cur.fetchone()[0]
        if not args.skip_generate:
            print(
                f"generating {args.accounts} accounts x {args.days} days x (10 + 30 + 100) "
                f"objects into {database}.{args.raw_schema} ...",
                flush=True,
            )
            start = time.perf_counter()
            create_tables(cur, args.raw_schema)
            for stmt in dims_sql(args.raw_schema, args.accounts, old_load):
                cur.execute(stmt)
            load(
                cur,
                args.raw_schema,
                args.accounts,
                first_day,
                str(last_day),
                old_load,
                1.0,
                monthly=True,
            )
            print(f"  generated in {time.perf_counter() - start:.0f}s", flush=True)
        cur.execute(
            f"select (select count(*) from {args.raw_schema}.insights_ad)"
            f" + (select count(*) from {args.raw_schema}.insights_adset)"
            f" + (select count(*) from {args.raw_schema}.insights_campaign)"
        )
        raw_rows = cur.fetchone()[0]

        full, full_timings = None, {}
        if not args.skip_full:
            print("dbt build --full-refresh ...", flush=True)
            full, full_timings = dbt_build(dbt, env, full_refresh=True)
        cur.execute(f"select count(*) from {args.target_schema}.meta_insights_daily")
        daily_rows = cur.fetchone()[0]
        cur.execute(f"select count(*) from {args.target_schema}.meta_insights_levels")
        levels_rows = cur.fetchone()[0]

        print(
            f"simulating a daily sync: last {args.lookback_days} days re-extracted + 1 new day ...",
            flush=True,
        )
        cur.execute(
            f"select (date '{last_day}' - {args.lookback_days - 1})::text,"
            f" (date '{last_day}' + 1)::text, now()::timestamp::text"
        )
        sync_first, sync_last, new_load = cur.fetchone()
        load(
            cur,
            args.raw_schema,
            args.accounts,
            sync_first,
            sync_last,
            new_load,
            1.07,
            monthly=False,
        )

        print(f"dbt build (incremental, tests on {args.test_scope} rows) ...", flush=True)
        incr, incr_timings = dbt_build(dbt, env, full_refresh=False, test_scope=args.test_scope)

    print()
    print(
        f"raw insights rows: {raw_rows:,}; meta_insights_daily {daily_rows:,} rows, "
        f"meta_insights_levels {levels_rows:,} rows"
    )
    if full is not None:
        print(f"full build (--full-refresh): {full:7.1f}s  ({summarise(full_timings)})")
    print(
        f"incremental daily build:     {incr:7.1f}s  ({summarise(incr_timings)})"
        f"  [meta_test_scope: {args.test_scope}]"
    )
    if full is not None:
        print(f"incremental / full:          {100 * incr / full:6.1f}%  (goal <= 10%)")
    slowest = sorted(incr_timings.items(), key=lambda item: -item[1])[:8]
    print("slowest nodes of the incremental build:")
    for node, seconds in slowest:
        print(f"  {seconds:6.1f}s  {node}")


if __name__ == "__main__":
    main()
