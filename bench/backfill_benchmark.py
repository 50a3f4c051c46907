#!/usr/bin/env python3
"""Benchmark a backfill end to end (tap -> target -> dbt) against the sandbox's lower bound.

Workload (default, #16 goal 2): 1 ad account x 200 ads (10 campaigns x 4 ad sets x 5 ads), 3
years of daily insights at 3 levels, the Graph API sandbox (`meta-sandbox serve`, a process of
its own) at time scale 1.0 (Meta's pace). Each run: a fresh database (`meta_elt_bench_<random>`
on the server of the PG* variables, dropped afterwards) and `meta-elt backfill --tenant ...
--account ... --since <3 years ago> --until <yesterday>` at the defaults, sampled from /proc.

Printed per run: wall; the sandbox's lower bound (its least possible wall time for the jobs it
served: summed service time / the account's capacity) and wall / bound (goal <= 1.3); the tap's
lifetime, the loader's drain after the tap, dbt's own run time (its "Finished running ... in X s")
and what is left (start-up, Meltano, dbt's start-up and parse); CPU by process; rows; throttling
errors; the load average before and after. Not a test: run it by hand from the project root.

    PGHOST=127.0.0.1 PGUSER=postgres .venv/bin/python bench/backfill_benchmark.py --runs 2
    .venv/bin/python bench/backfill_benchmark.py --years 1 --time-scale 0.1 --runs 1  # quick look
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

import psycopg
from bench_support import (
    BIN,
    ROOT,
    BenchError,
    create_database,
    dbt_run_seconds,
    drop_database,
    one_run_timeline,
    pg_defaults,
    run_sampled,
)
from tap_benchmark import ACCOUNT, TOKEN, Sandbox, world

TENANT = "5a1f0c3e-8b7d-4e2a-9c6f-3d8e1b2a4c70"


def reset_stats(base_url: str) -> None:
    request = urllib.request.Request(f"{base_url}/__sandbox/stats/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def backfill(args: argparse.Namespace, sandbox: Sandbox, registry: Path) -> dict:
    base_url = sandbox.base_url
    database = create_database()
    today = dt.date.today()
    since = today - dt.timedelta(days=365 * args.years)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAP_FACEBOOK_")},
        "PGDATABASE": database,
        "META_ELT_TENANTS": str(registry),
        "META_ELT_BENCH_TOKEN": TOKEN,
        "TAP_FACEBOOK_API_URL": base_url,
    }
    command = [
        str(BIN / "meta-elt"), "backfill", "--tenant", TENANT, "--account", ACCOUNT,
        "--since", since.isoformat(), "--until", (today - dt.timedelta(days=1)).isoformat(),
    ]  # fmt: skip
    try:
        reset_stats(base_url)
        result = run_sampled(command, env, ROOT)
        served = sandbox.stats()
        run_name = f"backfill-{TENANT}-{ACCOUNT}-{command[-3]}-{command[-1]}"
        log = ROOT / ".meltano" / "logs" / "meta-elt" / f"{run_name}-dbt.log"
        result["dbt_run"] = dbt_run_seconds(log)
        with psycopg.connect(dbname=database) as conn:
            result["rows"] = sum(
                conn.execute(f"select count(*) from raw_meta.insights_{level}").fetchone()[0]
                for level in ("ad", "adset", "campaign")
            )
    finally:
        if not args.keep:
            with contextlib.suppress(BenchError, psycopg.Error):
                drop_database(database)
    bound = served["lower_bound_seconds"]
    result.update(
        one_run_timeline(result),
        lower_bound=bound,
        ratio=result["wall"] / bound,
        jobs=served["jobs_created"],
        throttled=served.get("throttled_total", 0),
    )
    result.pop("sampler")
    result.pop("output")
    result["database"] = database
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--ads", type=int, default=200)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    pg_defaults()
    runs = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        registry = tmp / "tenants.yml"
        registry.write_text(
            json.dumps(
                {
                    "tenants": [
                        {
                            "id": TENANT,
                            "name": "Backfill bench",
                            "token_env": "META_ELT_BENCH_TOKEN",
                            "accounts": [ACCOUNT],
                        }
                    ]
                }
            )
        )
        sandbox = Sandbox(world(args.ads, 365 * args.years + 30), args.time_scale, tmp)
        try:
            for _ in range(args.runs):
                runs.append(backfill(args, sandbox, registry))
                print(json.dumps(runs[-1]), flush=True)
        except BenchError as exc:
            print(f"backfill_benchmark: error: {exc}", file=sys.stderr)
            return 1
        finally:
            sandbox.close()
    print(
        f"\n{args.years} year(s), 1 account x {args.ads} ads, 3 levels, time scale "
        f"{args.time_scale}, {runs[0]['rows']:,} rows\n"
    )
    print("| run | wall | lower bound | wall / bound | before the tap | tap | drain after | "
          "dbt run | rest | CPU | CPU by process | jobs | throttled | load |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        by_kind = ", ".join(f"{k} {v:.1f}" for k, v in r["cpu_by_kind"].items())
        print(
            f"| {i} | {r['wall']:.1f} s | {r['lower_bound']:.1f} s | **{r['ratio']:.2f}** | "
            f"{r['before_tap']:.1f} s | {r['tap_lifetime']:.1f} s | {r['drain_after_tap']:.1f} s | "
            f"{r['dbt_run'] or 0:.1f} s | {r['overhead_wall']:.1f} s | {r['cpu']:.1f} s | "
            f"{by_kind} | "
            f"{r['jobs']} | {r['throttled']} | {r['load']} |"
        )
    print(f"\nwall / bound: median {statistics.median(r['ratio'] for r in runs):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
