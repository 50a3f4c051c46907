#!/usr/bin/env python3
"""Benchmark the loader (target-postgres-window-state) behind the tap, on the sandbox.

Workload (default): 1 ad account x 200 ads x 3 years x 3 levels (ad, adset, campaign) from the
Graph API sandbox at time scale 0.1 (an API ten times faster than Meta), tap settings as in
bench/tap_benchmark.py (chunk_months=1, max_concurrent_jobs=4, poll_interval=1). Each run:

1. tap alone: the tap's stdout goes to a file (kept as the Singer stream for step 3);
2. tap | target: the tap piped into the loader, as Meltano runs them, into a fresh schema;
3. target alone: the loader reads the stream of step 1 from the file, pinned to one core, into a
   fresh schema: its rows/s on one core (rows / wall) and per CPU-second;
4. yardstick: the same stream parsed (msgspec) and each record COPYed as one jsonb value into a
   temp table, on the same core: the floor a Python loader works against (the issue put it at
   about 50,000 rows/s on its machine), so figures from machines of different speeds compare.

Printed per run: wall and CPU seconds (user + sys, from the kernel's accounting of each process),
records (rows), and for step 2 how long the loader ran on after the tap ended; then min and median
over the runs, and tap | target wall / tap alone wall (goal <= 1.1). Needs PG* (run it under
`meta-elt with-postgres --scratch`); the schemas it creates are dropped at the end.

    .venv/bin/meta-elt with-postgres --scratch --database meta_elt_bench -- \\
        .venv/bin/python bench/loader_benchmark.py --runs 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tap_benchmark as tb  # the sandbox world and runner live there

ROOT = Path(__file__).resolve().parents[1]
LOADER = ROOT / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin"
LOADER_CONFIG = {  # load/loaders.meltano.yml's config, as Meltano hands it to the loader
    "sqlalchemy_url": "postgresql+psycopg://",
    "load_method": "upsert",
    "add_record_metadata": True,
    "hard_delete": False,
    "validate_records": False,
    "state_confirm_seconds": 10,
}


def cpu_seconds(usage: os.struct_rusage | None) -> float:
    return round(usage.ru_utime + usage.ru_stime, 2) if usage else 0.0


def reap(proc: subprocess.Popen) -> tuple[float, os.struct_rusage]:
    """Wait for ``proc``: (monotonic time it ended, its resource usage from the kernel)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic(), usage


def psql(statement: str) -> None:
    env = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}
    subprocess.run(["psql", "-qAtc", statement], check=True, stdout=subprocess.DEVNULL, env=env)


# Plugin venvs hold no bytecode where PYTHONDONTWRITEBYTECODE is set: every start would compile
# ~650 modules (about 2 CPU-s for the loader). Measure the processes as a user's machine runs
# them, with their bytecode written on the first start.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

#: Step 4, in the loader's Python (msgspec and psycopg are there): every RECORD as one jsonb value.
YARDSTICK = """
import sys, msgspec, psycopg
decode, encode = msgspec.json.Decoder().decode, msgspec.json.Encoder().encode
with psycopg.connect() as conn:
    conn.execute("create temp table yardstick (stream text, record jsonb)")
    with conn.cursor().copy("copy yardstick from stdin") as copy:
        for line in sys.stdin.buffer:
            message = decode(line)
            if message["type"] == "RECORD":
                copy.write_row((message["stream"], encode(message["record"]).decode()))
"""


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.target = Path(args.target)
        self.schemas: list[str] = []
        years = args.years
        until = dt.date.today() - dt.timedelta(days=2)
        since = until - dt.timedelta(days=365 * years - 1)
        self.sandbox = tb.Sandbox(
            tb.world(args.ads, history_days=365 * years + 30), args.time_scale, tmp
        )
        self.tap_config = tmp / "tap.json"
        self.tap_config.write_text(
            json.dumps(
                {
                    "access_token": tb.TOKEN,
                    "account_ids": [tb.ACCOUNT],
                    "start_date": since.isoformat(),
                    "end_date": until.isoformat(),
                    "api_url": self.sandbox.base_url,
                    "chunk_months": 1,
                    "max_concurrent_jobs": 4,
                    "poll_interval": 1,
                    "page_size": 500,
                }
            )
        )

    def target_config(self) -> Path:
        schema = f"bench_loader_{uuid.uuid4().hex[:8]}"
        self.schemas.append(schema)
        path = self.tmp / f"{schema}.json"
        extra = json.loads(self.args.target_config)
        path.write_text(json.dumps({**LOADER_CONFIG, "default_target_schema": schema, **extra}))
        return path

    def target_cmd(self) -> list[str]:
        return [str(self.target), "--config", str(self.target_config())]

    def target_env(self) -> dict[str, str]:
        return {**os.environ, "TARGET_POSTGRES_LOGLEVEL": "WARNING"}

    def tap_alone(self, stream: Path) -> dict:
        started = time.monotonic()
        with stream.open("wb") as out:
            tap = subprocess.Popen(
                [str(tb.TAP), "--config", str(self.tap_config)],
                stdout=out,
                stderr=subprocess.DEVNULL,
            )
            ended, usage = reap(tap)
        if tap.returncode != 0:
            raise SystemExit(f"tap failed with exit code {tap.returncode}")
        return {"wall": round(ended - started, 2), "tap_cpu": cpu_seconds(usage)}

    def tap_to_target(self) -> dict:
        started = time.monotonic()
        tap = subprocess.Popen(
            [str(tb.TAP), "--config", str(self.tap_config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        target = subprocess.Popen(
            self.target_cmd(),
            stdin=tap.stdout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self.target_env(),
        )
        assert tap.stdout is not None
        tap.stdout.close()  # the target holds the pipe's read end now
        tap_ended, tap_usage = reap(tap)
        target_ended, target_usage = reap(target)
        assert target.stderr is not None
        if tap.returncode != 0 or target.returncode != 0:
            raise SystemExit(f"tap | target failed: {target.stderr.read().decode()[-2000:]}")
        return {
            "wall": round(target_ended - started, 2),
            "tap_wall": round(tap_ended - started, 2),
            "target_after_tap": round(target_ended - tap_ended, 2),
            "tap_cpu": cpu_seconds(tap_usage),
            "target_cpu": cpu_seconds(target_usage),
        }

    def pinned(self, what: str, command: list[str], stream: Path, **popen) -> tuple[float, float]:
        """Wall and CPU seconds of ``command`` reading ``stream``, pinned to one core."""
        started = time.monotonic()
        with stream.open("rb") as source:
            step = subprocess.Popen(
                command,
                stdin=source,
                stderr=subprocess.PIPE,
                preexec_fn=lambda: os.sched_setaffinity(0, {self.args.cpu}),
                **popen,
            )
            ended, usage = reap(step)
        assert step.stderr is not None
        if step.returncode != 0:
            raise SystemExit(f"{what} failed: {step.stderr.read().decode()[-2000:]}")
        return ended - started, cpu_seconds(usage)

    def target_alone(self, stream: Path, rows: int) -> dict:
        wall, cpu = self.pinned(
            "target", self.target_cmd(), stream, stdout=subprocess.DEVNULL, env=self.target_env()
        )
        return {
            "wall": round(wall, 2),
            "target_cpu": cpu,
            "rows_per_second": round(rows / wall),
            "rows_per_cpu_second": round(rows / cpu),
        }

    def yardstick(self, stream: Path, rows: int) -> dict:
        wall, cpu = self.pinned("yardstick", [str(LOADER / "python"), "-c", YARDSTICK], stream)
        return {"wall": round(wall, 2), "cpu": cpu, "rows_per_second": round(rows / wall)}

    def close(self) -> None:
        self.sandbox.close()
        for schema in self.schemas:
            psql(f'drop schema if exists "{schema}" cascade')


def count_rows(stream: Path) -> dict[str, int]:
    rows: dict[str, int] = {}
    with stream.open("rb") as lines:
        for line in lines:
            if line.startswith(b'{"type":"RECORD"'):
                name = line[len(b'{"type":"RECORD","stream":"') :].split(b'"', 1)[0].decode()
                rows[name] = rows.get(name, 0) + 1
    return rows


def summary(runs: list[dict], step: str, figure: str) -> str:
    values = [run[step][figure] for run in runs]
    return f"min {min(values)}, median {statistics.median(values)}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--ads", type=int, default=200)
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--cpu", type=int, default=0, help="the core the target-alone step runs on")
    parser.add_argument(
        "--target",
        default=str(LOADER / "target-postgres-window-state"),
        help="loader executable (another checkout's, to compare)",
    )
    parser.add_argument(
        "--target-config", default="{}", help="JSON merged into the loader's config"
    )
    args = parser.parse_args()
    if "PGDATABASE" not in os.environ:
        raise SystemExit("PGDATABASE is not set: run under `meta-elt with-postgres --scratch`")
    runs = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bench = Bench(args, tmp)
        try:
            for _ in range(args.runs):
                stream = tmp / "stream.jsonl"
                run = {"load_before": os.getloadavg()[0], "tap": bench.tap_alone(stream)}
                rows = count_rows(stream)
                run["rows"] = sum(rows.values())
                run["tap_to_target"] = bench.tap_to_target()
                run["target_alone"] = bench.target_alone(stream, run["rows"])
                run["yardstick"] = bench.yardstick(stream, run["rows"])
                run["load_after"] = os.getloadavg()[0]
                runs.append(run)
                print(json.dumps(run), flush=True)
        finally:
            bench.close()
    ratios = [r["tap_to_target"]["wall"] / r["tap"]["wall"] for r in runs]
    print(f"runs {len(runs)}, records loaded per run {runs[0]['rows']:,}:")
    print(f"  tap alone wall        {summary(runs, 'tap', 'wall')} s")
    print(f"  tap | target wall     {summary(runs, 'tap_to_target', 'wall')} s")
    print(f"  ratio                 min {min(ratios):.2f}, median {statistics.median(ratios):.2f}")
    print(f"  target after tap      {summary(runs, 'tap_to_target', 'target_after_tap')} s")
    print(f"  tap CPU (piped)       {summary(runs, 'tap_to_target', 'tap_cpu')} s")
    print(f"  target CPU (piped)    {summary(runs, 'tap_to_target', 'target_cpu')} s")
    print(f"  target alone rows/s   {summary(runs, 'target_alone', 'rows_per_second')}")
    print(f"  target rows/CPU-s     {summary(runs, 'target_alone', 'rows_per_cpu_second')}")
    print(f"  yardstick rows/s      {summary(runs, 'yardstick', 'rows_per_second')}")
    shares = [r["target_alone"]["rows_per_second"] / r["yardstick"]["rows_per_second"]
              for r in runs]  # fmt: skip
    print(f"  target / yardstick    median {statistics.median(shares):.2f}")
    loads = [r["load_before"] for r in runs] + [r["load_after"] for r in runs]
    print(f"  load average (1 min)  {min(loads):.1f} to {max(loads):.1f}")


if __name__ == "__main__":
    main()
