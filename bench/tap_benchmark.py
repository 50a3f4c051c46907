#!/usr/bin/env python3
"""Benchmark tap-meta-insights against the Graph API sandbox's latency model.

Workload (default): 1 ad account x 200 ads x 365 days x 3 levels (ad, adset, campaign), on
the sandbox at time scale 1.0 (job service time = 3 s + 2 ms per row, 4 jobs per account at
once), with the tap's default settings (pass --max-concurrent-jobs / --poll-interval to
override them). The tap runs as a subprocess, as Meltano runs it; its stdout is read and
counted like a target would. Reported: wall time, async jobs, API calls, throttling errors the
sandbox answered, rows/s, the tap's peak RSS, the load average, and wall time / the sandbox's
`lower_bound_seconds` (the least time any client could need for the jobs it ran; goal <= 1.15).
With --years 1 3 it also compares peak RSS for 1 vs 3 years (goal: flat, since records are
streamed, never held).

    .venv/bin/python bench/tap_benchmark.py                      # full: 1 year, scale 1.0
    .venv/bin/python bench/tap_benchmark.py --years 1 3 --time-scale 0.25
    .venv/bin/python bench/tap_benchmark.py --days 30 --levels ad   # one job: the tap's overhead
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAP = Path(sys.executable).parent / "tap-meta-insights"
SANDBOX = Path(sys.executable).parent / "meta-sandbox"
TOKEN = "bench-token"
ACCOUNT = "act_424242"


def world(ads: int, history_days: int) -> dict:
    campaigns, adsets_per_campaign = 10, 4
    ads_per_adset = max(1, ads // (campaigns * adsets_per_campaign))
    return {
        "seed": 42,
        "tokens": [{"token": TOKEN, "accounts": [ACCOUNT]}],
        "accounts": [
            {
                "id": ACCOUNT,
                "currency": "USD",
                "timezone_name": "America/New_York",
                "history_days": history_days,
                "campaigns": campaigns,
                "adsets_per_campaign": adsets_per_campaign,
                "ads_per_adset": ads_per_adset,
            }
        ],
    }


class Sandbox:
    """`meta-sandbox serve` in a subprocess (so its CPU and memory are not the tap's)."""

    def __init__(self, spec: dict, time_scale: float, tmp: Path) -> None:
        world_path = tmp / "world.json"
        world_path.write_text(json.dumps(spec))
        self.proc = subprocess.Popen(
            [
                str(SANDBOX),
                "serve",
                "--port",
                "0",
                "--world",
                str(world_path),
                "--time-scale",
                str(time_scale),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.search(r"(http://\S+)", line)
        if not found:
            self.proc.kill()
            raise SystemExit(f"sandbox did not start: {line!r}")
        self.base_url = found.group(1)

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.base_url}/__sandbox/stats", timeout=60) as resp:
            return json.loads(resp.read())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tap_config(args: argparse.Namespace, base_url: str, since: dt.date, until: dt.date) -> dict:
    """The tap's config: the tap's defaults but for what the command line sets."""
    config = {
        "access_token": TOKEN,
        "account_ids": [ACCOUNT],
        "start_date": since.isoformat(),
        "end_date": until.isoformat(),
        "api_url": base_url,
    }
    for name in ("chunk_months", "max_concurrent_jobs", "poll_interval", "page_size"):
        if getattr(args, name) is not None:
            config[name] = getattr(args, name)
    if args.levels:
        config["reports"] = [{"name": level, "level": level} for level in args.levels]
    return config


def run_once(args: argparse.Namespace, years: int) -> dict:
    until = dt.date.today() - dt.timedelta(days=2)
    days = args.days or 365 * years
    since = until - dt.timedelta(days=days - 1)
    spec = world(args.ads, history_days=days + 30)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sb = Sandbox(spec, args.time_scale, tmp)
        try:
            config = tap_config(args, sb.base_url, since, until)
            config_path = tmp / "config.json"
            config_path.write_text(json.dumps(config))
            started = time.monotonic()
            proc = subprocess.Popen(
                [str(TAP), "--config", str(config_path)],
                stdout=subprocess.PIPE,
                stderr=None if args.verbose else subprocess.DEVNULL,
                text=True,
                bufsize=1 << 16,
            )
            assert proc.stdout is not None
            peak = [0]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], _hwm_kib(proc.pid))
                    done.wait(0.1)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            rows: dict[str, int] = {}
            for line in proc.stdout:
                if line.startswith('{"type":"RECORD"'):
                    stream = line[len('{"type":"RECORD","stream":"') :].split('"', 1)[0]
                    rows[stream] = rows.get(stream, 0) + 1
            peak[0] = max(peak[0], _hwm_kib(proc.pid))
            proc.wait()
            wall = time.monotonic() - started
            done.set()
            stats = sb.stats()
        finally:
            sb.close()
    if proc.returncode != 0:
        raise SystemExit(f"tap failed with exit code {proc.returncode}")
    insights_rows = sum(
        n for s, n in rows.items() if s.startswith("insights_") and s != "insights_windows"
    )
    calls = sum(int(n) for by_status in stats["requests"].values() for n in by_status.values())
    return {
        "years": years,
        "days": (until - since).days + 1,
        "wall_seconds": round(wall, 2),
        "lower_bound_seconds": round(stats["lower_bound_seconds"], 2),
        "ratio_to_lower_bound": round(wall / stats["lower_bound_seconds"], 3),
        "over_lower_bound_seconds": round(wall - stats["lower_bound_seconds"], 2),
        "job_service_seconds": round(stats["service_seconds"], 2),
        "async_jobs": stats["jobs_created"],
        "throttling_errors": stats.get("throttled_total", 0),
        "throttling_errors_by_code": stats.get("throttled", {}),
        "peak_jobs_at_meta": stats["per_account"][ACCOUNT].get("peak_unfinished_jobs"),
        "api_calls": calls,
        "insights_rows": insights_rows,
        "rows_per_second": round(insights_rows / wall, 1),
        "tap_peak_rss_mb": round(peak[0] / 1024, 1),
        "rows_by_stream": rows,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--years", type=int, nargs="+", default=[1], help="runs, in years of data")
    parser.add_argument("--days", type=int, help="days of data instead of --years (one run)")
    parser.add_argument("--ads", type=int, default=200)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument(
        "--levels",
        nargs="+",
        choices=("ad", "adset", "campaign", "account"),
        help="one report per level (default: the tap's default reports ad, adset, campaign)",
    )
    tap = "default: the tap's default"
    parser.add_argument("--chunk-months", type=int, help=tap)
    parser.add_argument("--max-concurrent-jobs", type=int, help=tap)
    parser.add_argument("--poll-interval", type=float, help=tap)
    parser.add_argument("--page-size", type=int, help=tap)
    parser.add_argument("--verbose", action="store_true", help="show the tap's log")
    args = parser.parse_args()
    results = [run_once(args, years) for years in ([1] if args.days else args.years)]
    settings = {
        k: "tap default" if getattr(args, k) is None else getattr(args, k)
        for k in (
            "ads",
            "days",
            "levels",
            "time_scale",
            "chunk_months",
            "max_concurrent_jobs",
            "poll_interval",
            "page_size",
        )
    }
    print(json.dumps({"settings": settings, "runs": results}, indent=2))
    if len(results) > 1:
        low, high = results[0]["tap_peak_rss_mb"], results[-1]["tap_peak_rss_mb"]
        first, last = results[0]["years"], results[-1]["years"]
        print(f"tap peak RSS {first}y {low} MB vs {last}y {high} MB (x{high / low:.2f})")


if __name__ == "__main__":
    main()
