#!/usr/bin/env python3
"""Benchmark the daily sync through Dagster against `meta-elt sync --all --parallel 4`.

Workload (default): 20 ad accounts in 4 tenants x 5 accounts, small accounts (1 campaign, 1 ad
set, 2 ads, 60 days of history, 2 report jobs at once), one Graph API sandbox (in this process)
at time scale 1.0 (Meta's pace), a lookback of 28 days (the product's default). Each side runs
into a fresh database of its own (`meta_elt_bench_<random>`, created here and dropped at the
end) on the PostgreSQL server of the PG* variables (without PGHOST: 127.0.0.1:5432, user
postgres), so both do a first sync of the same days of the same sandbox world:

A. meta-elt: `meta-elt sync --all --parallel 4 --lookback-days N`, timed end to end (its dbt
   build included), with the CPU time of its process tree (getrusage RUSAGE_CHILDREN).
B. Dagster: `meta-elt-dagster serve` (webserver, daemon, code server on PostgreSQL storage, the
   project's dagster.yaml) is started and its registry sensor adds the tenant-account
   partitions (not timed); then the schedule `daily_meta_insights` is started (its cron here: a
   daily one at the minute --startup-seconds after serve's start) and stopped after its tick.
   Timed from the tick's scheduled time until the end of the marts build run that the sensor
   `build_marts_after_loads` requests after the last load.
   Per run, from its events: queue wait (created -> started) and its parts: submit (the run and
   its "planned materialization" events written), slot (waiting for a run slot), spawn (a Python
   process with dagster imported), code load (the code location imported in it); run duration
   (started -> ended) and its parts: setup, meta-elt's own seconds (its `$ meta-elt` line -> its
   first materialization; the run's "meta-elt" metadata gives it in whole seconds: "reported"),
   after (the materialization events written). Engine overhead per run = run duration - meta-elt
   (median, min, max); engine time per run = created -> ended less the slot wait and meta-elt.
   CPU of the Dagster process tree in the window (from /proc: live processes' own and reaped
   children's times), split by process (sampled every 0.5 s); serve's whole life
   (RUSAGE_CHILDREN).

Printed: both walls, the ratio Dagster / meta-elt, the load average (1 min) before and after each
side, the sandbox's report jobs, API calls and throttling answers per side, and a Markdown table.
`--repeat K` alternates A B A B ... K times. Not a test: run it by hand from the project root
with the project's venv. Another Dagster started from this project at the same time shares its
transform/target/dagster (serve runs `dbt parse` there).

    PGHOST=127.0.0.1 PGUSER=postgres .venv/bin/python bench/dagster_benchmark.py
    .venv/bin/python bench/dagster_benchmark.py --time-scale 0.1 --repeat 2
    .venv/bin/python bench/dagster_benchmark.py --tenants 2 --accounts-per-tenant 1 \\
        --time-scale 0.05                                          # quick look (~15 min)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
from bench_support import (
    BIN,
    CLOCK_TICKS,
    ROOT,
    BenchError,
    Workload,
    admin_connection,
    children_cpu,
    create_database,
    drop_database,
    load_average,
    make_workload,
    pg_defaults,
    proc_stat,
    process_tree,
    sandbox_counts,
    sandbox_world,
    spread,
    tree_cpu,
    write_registry,
)
from meta_sandbox.testing import SandboxServer

SCHEDULE = (
    '{repositoryName: "__repository__", repositoryLocationName: "meta_elt", '
    'scheduleName: "daily_meta_insights"}'
)
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")
MARTS_TAG = "meta_elt/marts"
MARTS_SENSOR = "build_marts_after_loads"


# --------------------------------------------------------------------------- workload


def side_env(
    args: argparse.Namespace, workload: Workload, registry: Path, api_url: str, database: str
) -> dict[str, str]:
    """The environment of either side: PG* with its own database, the registry, the tokens, the
    sandbox; the Dagster settings are read by the code location only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_FACEBOOK_", "DAGSTER_"))}
    env.update(
        {
            "PGDATABASE": database,
            "META_ELT_TENANTS": str(registry),
            "TAP_FACEBOOK_API_URL": api_url,
            "META_ELT_DAGSTER_LOOKBACK_DAYS": str(args.lookback_days),
            "META_ELT_DAGSTER_SCHEDULE": "stopped",
            "META_ELT_DAGSTER_REGISTRY_SECONDS": str(args.sensor_seconds),
        }
    )
    env.update({workload.token_env(n): workload.tokens[t] for n, t in enumerate(workload.tenants)})
    if args.poll_interval is not None:
        env["TAP_FACEBOOK_POLL_INTERVAL"] = str(args.poll_interval)
    return env


# --------------------------------------------------------------------------- PostgreSQL


def dynamic_partitions(database: str) -> int:
    with psycopg.connect(dbname=database, autocommit=True, connect_timeout=5) as conn:
        if not conn.execute("select to_regclass('dagster.dynamic_partitions')").fetchone()[0]:
            return 0
        return conn.execute(
            "select count(*) from dagster.dynamic_partitions "
            "where partitions_def_name = 'meta_tenant_account'"
        ).fetchone()[0]


# --------------------------------------------------------------------------- side A: meta-elt


def dbt_build_start(lines: list[tuple[float, str]]) -> float | None:
    """When meta-elt's dbt build began: its first progress line less the elapsed time it shows
    (progress lines come every 10 s: a shorter build shows none)."""
    for at, line in lines:
        found = re.search(r"progress: dbt .*elapsed (\d+):(\d\d):(\d\d)", line)
        if found:
            hours, minutes, seconds = (int(g) for g in found.groups())
            return at - (hours * 3600 + minutes * 60 + seconds)
    return None


def run_meta_elt(args: argparse.Namespace, env: dict[str, str], log: Path) -> dict:
    command = [
        str(BIN / "meta-elt"), "sync", "--all", "--parallel", str(args.parallel),
        "--lookback-days", str(args.lookback_days),
    ]  # fmt: skip
    load_before, cpu_before = load_average(), children_cpu()
    started = time.monotonic()
    lines: list[tuple[float, str]] = []
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic() - started, line.rstrip()))
            out.write(f"{lines[-1][0]:8.2f} {line}")
        code = proc.wait()
    wall = time.monotonic() - started
    if code != 0:
        tail = " | ".join(line for _, line in lines[-6:])
        raise BenchError(f"meta-elt sync exited with {code} (log {log}): {tail[-1500:]}")
    build_start = dbt_build_start(lines)
    return {
        "wall": wall,
        "cpu": children_cpu() - cpu_before,
        "build": wall - build_start if build_start is not None else None,
        "load": f"{load_before} -> {load_average()}",
    }


# --------------------------------------------------------------------------- side B: Dagster


class Dagster:
    """`meta-elt-dagster serve` in a process group of its own, and its GraphQL API."""

    def __init__(self, env: dict[str, str], home: Path, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [str(BIN / "meta-elt-dagster"), "serve", "--port", "0", "--home", str(home)],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = ""
        self.seen: dict[int, str] = {}  # pid -> start time: every process of the tree seen

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"meta-elt-dagster serve exited: {self.log_tail()}")
            found = re.search(r"Dagster UI: (http://\S+)", self.log.read_text())
            if found:
                self.url = found[1]
                return
            time.sleep(1)
        raise BenchError(f"meta-elt-dagster serve not ready in {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        return " | ".join(self.log.read_text().splitlines()[-6:])[-1500:]

    def remember_tree(self) -> None:
        for pid in process_tree(self.proc.pid):
            fields = proc_stat(pid)
            if fields:
                self.seen[pid] = fields[19]

    def gql(self, query: str, **variables: object) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        for attempt in range(5):  # a webserver busy on 2 cores may time out: ask again
            try:
                with urllib.request.urlopen(request, timeout=120) as answer:
                    body = json.loads(answer.read())
                break
            except (urllib.error.URLError, TimeoutError) as exc:
                if attempt == 4:
                    raise BenchError(f"GraphQL at {self.url}: {exc}") from None
                time.sleep(3)
        if body.get("errors"):
            raise BenchError(f"GraphQL: {body['errors']}"[:1500])
        return body["data"]

    def set_schedule(self, running: bool) -> None:
        if running:
            done = self.gql(
                f"mutation {{ startSchedule(scheduleSelector: {SCHEDULE}) {{ __typename "
                "... on PythonError { message } } }"
            )["startSchedule"]
        else:
            schedule_id = self.gql(
                f"{{ scheduleOrError(scheduleSelector: {SCHEDULE}) {{ "
                "... on Schedule { id } } }"
            )["scheduleOrError"]["id"]
            done = self.gql(
                "mutation($id: String) { stopRunningSchedule(id: $id) { __typename "
                "... on PythonError { message } } }",
                id=schedule_id,
            )["stopRunningSchedule"]
        if done["__typename"] != "ScheduleStateResult":
            raise BenchError(f"schedule {'start' if running else 'stop'}: {done}")

    def ticks(self) -> list[dict]:
        return self.gql(
            f"{{ scheduleOrError(scheduleSelector: {SCHEDULE}) {{ ... on Schedule {{ "
            "scheduleState { ticks(limit: 5) { status runIds timestamp skipReason "
            "error { message } } } } } }"
        )["scheduleOrError"]["scheduleState"]["ticks"]

    def runs(self) -> list[dict]:
        data = self.gql(
            "{ runsOrError { ... on Runs { results { runId jobName status creationTime "
            "startTime endTime updateTime tags { key value } } } } }"
        )
        runs = []
        for r in data["runsOrError"]["results"]:
            # A run that never started (failed to launch, canceled in the queue) has no start
            # time, one in flight no end: take the nearest known time.
            ended = r["endTime"] or r["updateTime"] or r["creationTime"]
            started = r["startTime"] or ended
            tags = {t["key"]: t["value"] for t in r["tags"]}
            runs.append({**r, "startTime": started, "endTime": ended, "tags": tags})
        return runs

    def events(self, run_id: str) -> list[dict]:
        events, cursor = [], None
        while True:
            page = self.gql(
                "query($id: ID!, $after: String) { logsForRun(runId: $id, afterCursor: $after, "
                "limit: 1000) { __typename ... on EventConnection { cursor hasMore events { "
                "__typename ... on MessageEvent { message timestamp eventType } "
                "... on MaterializationEvent { metadataEntries { label "
                "... on MarkdownMetadataEntry { mdStr } } } } } } }",
                id=run_id,
                after=cursor,
            )["logsForRun"]
            if page["__typename"] != "EventConnection":
                raise BenchError(f"events of run {run_id}: {page}")
            events += page["events"]
            cursor = page["cursor"]
            if not page["hasMore"]:
                return events

    def stop(self) -> None:
        """Ctrl-C to serve's group, as a person stops it; then any process of its tree left."""
        if self.proc.poll() is None:
            self.remember_tree()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for pid, started in self.seen.items():
            fields = proc_stat(pid)
            if fields and fields[19] == started and fields[0] != "Z":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def wait_for(what: str, check, timeout: float, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise BenchError(f"{what}: not within {timeout:.0f} s")


def first_tick(dagster: Dagster) -> dict | None:
    """The schedule's first tick once it has submitted its runs."""
    try:
        ticks = dagster.ticks()
    except BenchError:  # the webserver is busy: ask again
        return None
    if not ticks:
        return None
    tick = min(ticks, key=lambda t: t["timestamp"])
    if tick["status"] == "FAILURE":
        raise BenchError(f"the schedule's tick failed: {tick['error']}")
    if tick["status"] == "SKIPPED":
        raise BenchError(f"the schedule's tick was skipped: {tick['skipReason']}")
    return tick if tick["status"] == "SUCCESS" and tick["runIds"] else None


def marts_builds(runs: list[dict], since: float) -> list[dict]:
    """The runs of the marts (tagged by the run coordinator, or requested by the sensor)
    created at or after ``since``, oldest first."""
    return sorted(
        (
            r
            for r in runs
            if (MARTS_TAG in r["tags"] or r["tags"].get("dagster/sensor_name") == MARTS_SENSOR)
            and r["creationTime"] >= since
        ),
        key=lambda r: r["creationTime"],
    )


def loads_and_build_done(dagster: Dagster, tick: dict) -> list[dict] | None:
    """Every run once the tick's runs and the marts build after them have ended, else None."""
    runs = dagster.runs()
    by_id = {r["runId"]: r for r in runs}
    loads = [by_id[i] for i in tick["runIds"] if i in by_id]
    if len(loads) < len(tick["runIds"]) or any(r["status"] not in TERMINAL for r in loads):
        return None
    if not any(r["status"] == "SUCCESS" for r in loads):
        raise BenchError(f"every run of the tick failed: {[r['runId'] for r in loads]}")
    # The build after every load: a build requested while loads were still being created
    # (they trickle in) would be followed by another.
    builds = marts_builds(runs, since=max(r["endTime"] for r in loads))
    if any(r["status"] in TERMINAL for r in builds):
        return runs
    return None


#: A run's marks in order, and the phase that ends at each (from the run's events).
MARKS = (
    ("enqueued", "submit"),  # created -> RUN_ENQUEUED: the run and its "planned" events written
    ("starting", "slot"),  # -> RUN_STARTING: waiting for a run slot (limits, pool meta_api)
    ("process", "spawn"),  # -> "Started process for run": a Python process, dagster imported
    ("started", "code_load"),  # -> RUN_START: the code location loaded in that process
    ("work_start", "setup"),  # -> `$ meta-elt` (a load) or STEP_START (the marts build)
    ("work_end", "work"),  # -> the first materialization (a load) or STEP_SUCCESS (the build)
    ("ended", "after"),  # -> RUN_SUCCESS: the materialization events written
)


def run_marks(run: dict, events: list[dict]) -> dict[str, float]:
    """When each mark of MARKS happened (seconds since the epoch; a missing mark takes the time
    of the one before it, so its phase is 0)."""
    found: dict[str, float] = {}

    def mark(name: str, at: float) -> None:
        found.setdefault(name, at)

    for event in events:
        at = float(event.get("timestamp") or 0) / 1000
        kind, message = event.get("eventType"), event.get("message") or ""
        if kind == "RUN_ENQUEUED":
            mark("enqueued", at)
        elif kind == "RUN_STARTING":
            mark("starting", at)
        elif message.startswith("Started process for run"):
            mark("process", at)
        elif message.startswith("$ meta-elt"):
            mark("work_start", at)
        elif kind == "ASSET_MATERIALIZATION" and "work_start" in found:
            mark("work_end", at)
        elif kind == "STEP_START":
            mark("step_start", at)
        elif kind == "STEP_SUCCESS":
            mark("step_end", at)
    found.setdefault("work_start", found.get("step_start", run["startTime"]))
    found.setdefault("work_end", found.get("step_end", found["work_start"]))
    marks = {"created": run["creationTime"], "started": run["startTime"], "ended": run["endTime"]}
    previous = marks["created"]
    for name, _phase in MARKS:
        marks[name] = marks.get(name, found.get(name, previous))
        previous = marks[name]
    return marks


def run_timing(run: dict, events: list[dict]) -> dict:
    """Where a run's time went (seconds), from its events."""
    marks = run_marks(run, events)
    out = {"run_id": run["runId"], "account": run["tags"].get("meta_elt/account", "")}
    previous = marks["created"]
    for name, phase in MARKS:
        out[phase] = marks[name] - previous
        previous = marks[name]
    reported = [
        int(seconds)
        for event in events
        for entry in event.get("metadataEntries") or []
        if entry.get("label") == "meta-elt"
        for seconds in re.findall(r"\bin (\d+)s:", entry.get("mdStr") or "")
    ]
    out.update(
        status=run["status"],
        events=len(events),
        planned=sum(e.get("eventType") == "ASSET_MATERIALIZATION_PLANNED" for e in events),
        queue_wait=run["startTime"] - run["creationTime"],
        duration=run["endTime"] - run["startTime"],
        meta_elt_reported=reported[0] if reported else None,
        failure=next((e["message"] for e in events if e.get("eventType") == "RUN_FAILURE"), ""),
    )
    out["overhead"] = out["duration"] - out["work"]  # the issue's "engine overhead per run"
    # All the engine's own time for the run but the wait for a slot: submit, launch, in run.
    out["engine"] = run["endTime"] - run["creationTime"] - out["slot"] - out["work"]
    return out


class CpuSampler(threading.Thread):
    """Every ``interval`` s, each process of the tree under ``root`` and its own CPU time
    (utime + stime), by role; a process's CPU after its last sample is missed, and one living
    less than an interval may be missed whole, so the sum is a little below the tree's."""

    def __init__(self, root: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.base: dict[tuple[int, str], float] = {}  # CPU at the first sample, if alive then
        self.last: dict[tuple[int, str], float] = {}
        self.roles: dict[tuple[int, str], str] = {}
        self.done = threading.Event()
        self.sample(first=True)

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.sample()

    def stop(self) -> dict[str, float]:
        self.done.set()
        self.join()
        self.sample()
        by_role: dict[str, float] = {}
        for key, cpu in self.last.items():
            role = self.roles[key]
            by_role[role] = by_role.get(role, 0.0) + cpu - self.base.get(key, 0.0)
        return dict(sorted(by_role.items(), key=lambda kv: -kv[1]))

    def sample(self, first: bool = False) -> None:
        for pid in process_tree(self.root):
            fields = proc_stat(pid)
            if not fields:
                continue
            key = (pid, fields[19])
            cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            if key not in self.roles:
                self.roles[key] = process_role(pid)
                if first:
                    self.base[key] = cpu
            self.last[key] = cpu


ROLES = (  # (role, a part of its command line); the first that matches
    ("run workers", "spawn_main"),  # the code server's multiprocessing children, one per run
    ("registry reads", "tenants list"),  # `meta-elt tenants list` of the sensor and schedule
    ("webserver", "dagster-webserver"),
    ("daemon", "dagster-daemon"),
    ("code server", "api grpc"),
    ("serve", "meta-elt-dagster"),
    ("serve", "grpc-health-check"),
    ("run workers", "multiprocessing"),
)
WORK = "the work (meta-elt, Meltano, tap, target, dbt)"


def process_role(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return WORK
    return next((role for role, part in ROLES if part in command), WORK)


def run_dagster(args: argparse.Namespace, env: dict[str, str], work: Path) -> dict:
    # One tick only: a daily cron at a minute --startup-seconds from now. (A cron of every
    # minute ticks again while a tick of 20 runs is still submitting them, and that tick's runs
    # repeat the first's, whose run keys are per tick; stopping the schedule during its tick
    # does not hold: the daemon writes the schedule's state back as running when the tick ends.)
    tick_at = math.ceil((time.time() + args.startup_seconds) / 60) * 60
    at = time.gmtime(tick_at)
    env = {**env, "META_ELT_DAGSTER_CRON": f"{at.tm_min} {at.tm_hour} * * *"}
    life_cpu_before = children_cpu()
    dagster = Dagster(env, work / "home", work / "serve.log")
    try:
        dagster.wait_ready(args.timeout)
        n_accounts = args.tenants * args.accounts_per_tenant
        wait_for(
            "the registry sensor adding the tenant-account partitions",
            lambda: dynamic_partitions(env["PGDATABASE"]) >= n_accounts,
            args.timeout,
        )
        if time.time() > tick_at - 5:
            raise BenchError(
                f"Dagster was not ready before its tick at {time.strftime('%H:%M', at)} UTC; "
                "give a larger --startup-seconds"
            )
        idle_from, idle_cpu = time.time(), tree_cpu(dagster.proc.pid)
        dagster.set_schedule(running=True)
        time.sleep(max(0.0, tick_at - time.time()))
        load_before, cpu_before = load_average(), tree_cpu(dagster.proc.pid)
        idle_rate = (cpu_before - idle_cpu) / max(1e-6, tick_at - idle_from)
        sampler = CpuSampler(dagster.proc.pid)
        sampler.start()
        tick = wait_for("the schedule's tick", lambda: first_tick(dagster), args.timeout)
        dagster.set_schedule(running=False)
        runs = wait_for(
            "the tick's runs and the marts build after them",
            lambda: loads_and_build_done(dagster, tick),
            args.timeout,
            interval=3.0,
        )
        cpu_by_role = sampler.stop()
        cpu = tree_cpu(dagster.proc.pid) - cpu_before
        load_after = load_average()
        dagster.remember_tree()
        result = summarize_dagster(dagster, runs, tick)
        result.update(
            cpu=cpu,
            cpu_by_role=cpu_by_role,
            idle_cpu_per_s=idle_rate,
            load=f"{load_before} -> {load_after}",
        )
    finally:
        dagster.stop()
    result["life_cpu"] = children_cpu() - life_cpu_before
    return result


def summarize_dagster(dagster: Dagster, runs: list[dict], tick: dict) -> dict:
    by_id = {r["runId"]: r for r in runs}
    loads = [by_id[i] for i in tick["runIds"]]
    last_load_end = max(r["endTime"] for r in loads)
    build = next(r for r in marts_builds(runs, last_load_end) if r["status"] in TERMINAL)
    return {
        "wall": build["endTime"] - tick["timestamp"],
        "tick_timestamp": tick["timestamp"],
        "runs": len(loads) + 1,
        "marts_builds": len(marts_builds(runs, tick["timestamp"])),
        "failed_runs": [r["runId"] for r in loads if r["status"] != "SUCCESS"],
        "tick_to_first_run": min(r["creationTime"] for r in loads) - tick["timestamp"],
        "tick_to_last_run": max(r["creationTime"] for r in loads) - tick["timestamp"],
        "loads_wall": last_load_end - tick["timestamp"],
        "sensor_latency": build["creationTime"] - last_load_end,
        "most_at_once": most_at_once(loads),
        "build": run_timing(build, dagster.events(build["runId"])),
        "per_run": [run_timing(r, dagster.events(r["runId"])) for r in loads],
    }


def most_at_once(runs: list[dict]) -> int:
    edges = sorted([(r["startTime"], 1) for r in runs] + [(r["endTime"], -1) for r in runs])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


# --------------------------------------------------------------------------- report


def print_meta_elt(n: int, result: dict) -> None:
    build = f", of it the dbt build {result['build']:.1f} s" if result["build"] else ""
    print(
        f"[{n}] meta-elt: wall {result['wall']:.1f} s{build}; CPU {result['cpu']:.1f} s; "
        f"load {result['load']}; sandbox {result['sandbox']}",
        flush=True,
    )


def short_account(key: str) -> str:
    tenant, _, account = key.partition(":")
    return f"{tenant[:8]}:{account}"


def print_dagster(n: int, result: dict) -> None:
    b = result["build"]
    per_run = [t for t in result["per_run"] if t["status"] == "SUCCESS"]  # the figures below
    phases = [phase for _, phase in MARKS]
    print(f"[{n}] Dagster, each run of the tick (seconds; queue = submit+slot+spawn+code_load):")
    print(
        f"    {'account':<20} {'queue':>6} {' '.join(f'{p:>9}' for p in phases)} "
        f"{'run':>6} {'reported':>8} {'overhead':>8} {'engine':>6} {'events':>6}"
    )
    everyone = sorted(result["per_run"], key=lambda t: t["account"])
    for t in [*everyone, {**b, "account": "(marts build)"}]:
        account = short_account(t["account"]) if ":" in t["account"] else t["account"]
        print(
            f"    {account:<20} {t['queue_wait']:6.1f} "
            f"{' '.join(f'{t[p]:9.1f}' for p in phases)} {t['duration']:6.1f} "
            f"{t['meta_elt_reported'] if t['meta_elt_reported'] is not None else '-':>8} "
            f"{t['overhead']:8.1f} {t['engine']:6.1f} {t['events']:6d}"
        )
    for t in everyone:
        if t["status"] != "SUCCESS":
            print(f"    {short_account(t['account'])}: {t['status']}: {t['failure']}")
    roles = ", ".join(f"{role} {cpu:.1f}" for role, cpu in result["cpu_by_role"].items())
    print(
        f"[{n}] Dagster: wall {result['wall']:.1f} s from the tick's scheduled time "
        f"({result['runs']} runs: {len(everyone)} loads + the marts build; marts builds "
        f"since the tick {result['marts_builds']}; "
        f"{len(result['failed_runs'])} failed; at most {result['most_at_once']} loads at once)\n"
        f"    tick -> runs created {result['tick_to_first_run']:.1f} .. "
        f"{result['tick_to_last_run']:.1f} s (each load run's {per_run[0]['planned']} planned "
        f"events written first); tick -> last load ended {result['loads_wall']:.1f} s; "
        f"last load -> marts run created {result['sensor_latency']:.1f} s; marts run "
        f"{b['status']}: queue {b['queue_wait']:.1f} s, duration {b['duration']:.1f} s "
        f"(dbt step {b['work']:.1f} s)\n"
        f"    per load run: queue wait {spread([t['queue_wait'] for t in per_run])}; "
        f"run {spread([t['duration'] for t in per_run])}; meta-elt "
        f"{spread([t['work'] for t in per_run])}\n"
        f"    engine overhead per run (run - meta-elt): "
        f"{spread([t['overhead'] for t in per_run])}\n"
        f"    engine time per run (created -> ended, less the slot wait and meta-elt): "
        f"{spread([t['engine'] for t in per_run])}; of it submit "
        f"{spread([t['submit'] for t in per_run])}, spawn {spread([t['spawn'] for t in per_run])}"
        f", code load {spread([t['code_load'] for t in per_run])}, after meta-elt "
        f"{spread([t['after'] for t in per_run])}\n"
        f"    CPU of the Dagster tree in the window {result['cpu']:.1f} s (sampled by process: "
        f"{roles}); idle before the tick {result['idle_cpu_per_s']:.2f} CPU s/s; serve's whole "
        f"life {result['life_cpu']:.1f} s\n"
        f"    load {result['load']}; sandbox {result['sandbox']}",
        flush=True,
    )


def print_summary(pairs: list[tuple[dict, dict]]) -> None:
    print(
        "\n| pair | meta-elt wall (load) | Dagster wall (load) | ratio | overhead per run, "
        "median (min-max) | engine time per run, median |"
    )
    print("|---|---|---|---|---|---|")
    for n, (a, b) in enumerate(pairs, 1):
        ok = [t for t in b["per_run"] if t["status"] == "SUCCESS"]
        overheads = [t["overhead"] for t in ok]
        engine = statistics.median(t["engine"] for t in ok)
        print(
            f"| {n} | {a['wall']:.1f} s ({a['load']}) | {b['wall']:.1f} s ({b['load']}) | "
            f"{b['wall'] / a['wall']:.2f} | {statistics.median(overheads):.1f} s "
            f"({min(overheads):.1f}-{max(overheads):.1f}) | {engine:.1f} s |"
        )
    if len(pairs) > 1:
        ratios = [b["wall"] / a["wall"] for a, b in pairs]
        print(f"ratio Dagster / meta-elt: median {statistics.median(ratios):.2f}")


# --------------------------------------------------------------------------- main


def side(
    name: str,
    n: int,
    args: argparse.Namespace,
    workload: Workload,
    sandbox: SandboxServer,
    work: Path,
    databases: list[str],
) -> dict:
    """One side in a fresh database of its own (and a work directory of its own)."""
    database = create_database()
    databases.append(database)
    folder = work / f"{name}-{n}"
    folder.mkdir()
    env = side_env(args, workload, work / "tenants.yml", sandbox.base_url, database)
    sandbox.reset_stats()
    if name == "meta-elt":
        result = run_meta_elt(args, env, folder / "meta-elt.log")
    else:
        result = run_dagster(args, env, folder)
    result["sandbox"] = sandbox_counts(sandbox)
    if not args.keep:
        drop_database(database)
        databases.remove(database)
    return result


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=4, help="default 4")
    parser.add_argument("--accounts-per-tenant", type=int, default=5, help="default 5")
    parser.add_argument("--history-days", type=int, default=60, help="each account's (default 60)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="default 1.0: Meta's pace")
    parser.add_argument("--lookback-days", type=int, default=28, help="default 28")
    parser.add_argument(
        "--parallel", type=int, default=4, help="meta-elt sync --parallel (default 4)"
    )
    parser.add_argument(
        "--sensor-seconds",
        type=int,
        default=30,
        help="META_ELT_DAGSTER_REGISTRY_SECONDS: the sensors' interval (default 30, the "
        "product's; the marts build waits up to this long after the last load)",
    )
    parser.add_argument(
        "--startup-seconds",
        type=int,
        default=420,
        help="Dagster's schedule ticks once, this long after serve starts (rounded up to the "
        "minute; default 420): enough for serve and the registry sensor on a busy machine",
    )
    parser.add_argument(
        "--poll-interval", type=float, help="TAP_FACEBOOK_POLL_INTERVAL (default: the tap's)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="A B pairs, alternating (default 1)")
    parser.add_argument("--only", choices=("meta-elt", "dagster"), help="run one side only")
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600,
        help="seconds a step of a side may take (default 3600)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the logs")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    pg_defaults()
    try:
        admin_connection().close()
    except BenchError as exc:
        print(f"dagster_benchmark: error: {exc}", file=sys.stderr)
        return 1
    workload = make_workload(args.tenants, args.accounts_per_tenant)
    databases: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="dagster-bench-"))
    write_registry(workload, work / "tenants.yml")
    sides = [args.only] if args.only else ["meta-elt", "dagster"]
    results: list[dict] = []
    try:
        print(
            f"{len(workload.account_keys)} accounts ({args.tenants} tenants x "
            f"{args.accounts_per_tenant}), lookback {args.lookback_days} days, time scale "
            f"{args.time_scale}, sensors every {args.sensor_seconds} s; logs in {work} (kept on "
            "error or with --keep)",
            flush=True,
        )
        world = sandbox_world(workload, args.history_days)
        with SandboxServer(world=world, time_scale=args.time_scale) as sandbox:
            for n in range(1, args.repeat + 1):
                pair = {}
                for name in sides:
                    pair[name] = side(name, n, args, workload, sandbox, work, databases)
                    (print_meta_elt if name == "meta-elt" else print_dagster)(n, pair[name])
                results.append(pair)
    except BenchError as exc:
        print(f"dagster_benchmark: error: {exc} (logs in {work})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"dagster_benchmark: interrupted (logs in {work})", file=sys.stderr)
        return 130
    finally:
        for database in list(databases):
            if not args.keep:
                with contextlib.suppress(BenchError, psycopg.Error):
                    drop_database(database)
    if not args.only:
        print_summary([(p["meta-elt"], p["dagster"]) for p in results])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
