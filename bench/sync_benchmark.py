#!/usr/bin/env python3
"""Benchmark the daily sync of many tenants: what each tenant run costs beyond its own work.

Workload (default, #16 goal 3): 5 tenants x 1 ad account, each 80 ads (4 campaigns x 1 ad set x
20 ads) with 120 days of history, a 90-day lookback (every tenant's first sync reads 90 days of
3 levels), one Graph API sandbox in this process at time scale 1.0 (Meta's pace), at the
product's defaults. One database of the benchmark's own (`meta_elt_bench_<random>` on the server
of the PG* variables, dropped at the end): a first `sync --all` sets it up (Meltano's migrations,
dbt's first parse; printed, not tabled), then the syncs measured are daily runs as users see
them, each re-reading the lookback.

A. One tenant: `meta-elt sync --tenant <first> --lookback-days 90`, sampled from /proc every
   50 ms. Its wall time less the tap's lifetime (start to exit: its waiting on Meta), the
   loader's drain after the tap (loading), and dbt's own run time (its "Finished running ... in
   X s": the SQL and tests) is the orchestration overhead: meta-elt, Meltano's start-up, the
   tap's discovery, dbt's start-up and parse. CPU by process: meta-elt, meltano (every meltano
   process: run, invoke), discovery (the tap's --discover), tap, target, dbt.
B. All tenants: `meta-elt sync --all --parallel N` for each --parallel (default 1 2 4): wall,
   CPU of the whole process tree (RUSAGE_CHILDREN) per tenant, CPU by process.

Printed: one JSON line per sync, then the tables; the load average (1 min) before and after each
sync. Not a test: run it by hand from the project root with the project's venv.

    PGHOST=127.0.0.1 PGUSER=postgres .venv/bin/python bench/sync_benchmark.py
    .venv/bin/python bench/sync_benchmark.py --tenants 2 --parallel 2 --time-scale 0.1  # quick look
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

import psycopg
from bench_support import (
    BIN,
    ROOT,
    BenchError,
    create_database,
    dbt_overhead,
    dbt_run_seconds,
    drop_database,
    extract_load_overheads,
    make_workload,
    one_run_timeline,
    pg_defaults,
    run_sampled,
    sandbox_counts,
    sandbox_world,
    spread,
    write_registry,
)
from meta_sandbox.testing import SandboxServer

# --------------------------------------------------------------------------- one sync


def sync(args: argparse.Namespace, env: dict[str, str], sync_args: list[str]) -> dict:
    """One `meta-elt sync`: wall, CPU, the sampler's view, dbt's run time, rows extracted."""
    command = [str(BIN / "meta-elt"), "sync", *sync_args, "--lookback-days", str(args.lookback)]
    result = run_sampled(command, env, ROOT)
    dbt_log = ROOT / ".meltano" / "logs" / "meta-elt" / f"sync-{env['PGDATABASE']}-dbt.log"
    result["dbt_run"] = dbt_run_seconds(dbt_log)
    result["dbt_overhead"] = dbt_overhead(result["sampler"], result["dbt_run"])
    result["el_overheads"] = extract_load_overheads(result["sampler"])
    result["rows"] = sum(
        int(n.replace(",", "")) for n in re.findall(r"([\d,]+) rows extracted", result["output"])
    )
    return result


def show(result: dict) -> None:
    """The result as one JSON line (without the sampler and the output)."""
    print(json.dumps({k: v for k, v in result.items() if k not in ("sampler", "output")}))


def overhead(result: dict) -> dict:
    """A one-tenant sync's timeline (bench_support.one_run_timeline) and its orchestration CPU:
    meta-elt's, Meltano's and the tap's discovery."""
    cpu = result["cpu_by_kind"]
    return {
        **one_run_timeline(result),
        "overhead_cpu": cpu["meta-elt"] + cpu["meltano"] + cpu["discovery"],
    }


def cpu_line(cpu: dict[str, float], per: int = 1) -> str:
    return ", ".join(f"{k} {v / per:.1f}" for k, v in cpu.items())


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=5)
    parser.add_argument("--ads", type=int, default=80, help="a multiple of 20, or small")
    parser.add_argument("--history-days", type=int, default=120)
    parser.add_argument("--lookback", type=int, default=90)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1, help="every sync K times")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    pg_defaults()
    workload = make_workload(args.tenants, 1)
    first = next(iter(workload.tenants))
    world = sandbox_world(workload, args.history_days, ads=args.ads, capacity=4)
    singles, alls = [], []
    database = create_database()
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            SandboxServer(world=world, time_scale=args.time_scale) as sandbox,
        ):
            registry = Path(tmp) / "tenants.yml"
            write_registry(workload, registry)
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("TAP_FACEBOOK_")},
                "PGDATABASE": database,
                "META_ELT_TENANTS": str(registry),
                "TAP_FACEBOOK_API_URL": sandbox.base_url,
                **{
                    workload.token_env(n): workload.tokens[t]
                    for n, t in enumerate(workload.tenants)
                },
            }
            print("first sync (the database's set-up, Meltano's migrations, dbt's first parse):")
            show(sync(args, env, ["--all", "--parallel", str(max(args.parallel))]))
            for _ in range(args.repeat):
                sandbox.reset_stats()
                one = sync(args, env, ["--tenant", first])
                one.update(overhead(one), sandbox=sandbox_counts(sandbox))
                singles.append(one)
                show(one)
                for n in args.parallel:
                    sandbox.reset_stats()
                    run = sync(args, env, ["--all", "--parallel", str(n)])
                    run.update(parallel=n, sandbox=sandbox_counts(sandbox))
                    alls.append(run)
                    show(run)
    except BenchError as exc:
        print(f"sync_benchmark: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            with contextlib.suppress(BenchError, psycopg.Error):
                drop_database(database)
    print(
        f"\nworkload: {args.tenants} tenants x 1 account x {args.ads} ads, lookback "
        f"{args.lookback} days, time scale {args.time_scale}; rows per tenant "
        f"{singles[0]['rows']:,}\n"
    )
    print("| one tenant | wall | overhead wall | before the tap | after the load | EL overhead "
          "| dbt start-up | overhead CPU | CPU total | CPU by process | load |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for i, one in enumerate(singles, 1):
        print(
            f"| run {i} | {one['wall']:.1f} s | **{one['overhead_wall']:.1f} s** | "
            f"{one['before_tap']:.1f} s | {one['after_load']:.1f} s | "
            f"{spread(one['el_overheads'])} | {one['dbt_overhead'] or 0:.1f} s | "
            f"**{one['overhead_cpu']:.1f} s** | {one['cpu']:.1f} s | "
            f"{cpu_line(one['cpu_by_kind'])} | "
            f"{one['load']} |"
        )
    print("\n| sync --all | wall | EL overhead per tenant run | dbt start-up | CPU per tenant | "
          "CPU by process, per tenant | jobs | load |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for run in alls:
        print(
            f"| --parallel {run['parallel']} | {run['wall']:.1f} s | "
            f"{spread(run['el_overheads'])} | {run['dbt_overhead'] or 0:.1f} s | "
            f"**{run['cpu'] / args.tenants:.1f} s** | "
            f"{cpu_line(run['cpu_by_kind'], args.tenants)} | {run['sandbox']['report_jobs']} | "
            f"{run['load']} |"
        )
    if len(singles) > 1:
        walls = [one["wall"] for one in singles]
        print(f"\none tenant, wall: median {statistics.median(walls):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
