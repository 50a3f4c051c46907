"""What the benchmarks share: a workload of tenants and accounts on the Graph API sandbox, a
database of a run's own, and the CPU time of a process tree (from /proc)."""

from __future__ import annotations

import os
import re
import resource
import secrets
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import yaml
from meta_sandbox.testing import SandboxServer

#: The project's root, and the bin directory of the venv running the benchmark.
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: The processes of a meta-elt run, as Sampler names them.
KINDS = ("meta-elt", "meltano", "discovery", "tap", "target", "dbt")


class BenchError(RuntimeError):
    """One line: what went wrong."""


@dataclass(frozen=True)
class Workload:
    tenants: dict[str, list[str]]  # tenant id -> its ad accounts
    tokens: dict[str, str]  # tenant id -> its sandbox token (never printed)

    @property
    def account_keys(self) -> list[str]:
        return sorted(f"{t}:{a}" for t, accounts in self.tenants.items() for a in accounts)

    def token_env(self, index: int) -> str:
        return f"META_ELT_BENCH_TOKEN_{index}"


def make_workload(tenants: int, accounts_per_tenant: int) -> Workload:
    ids = [
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"meta-elt-bench/tenant/{n}")) for n in range(tenants)
    ]
    return Workload(
        tenants={
            t: [f"act_{9100000 + 100 * n + a}" for a in range(accounts_per_tenant)]
            for n, t in enumerate(ids)
        },
        tokens={t: f"bench-{secrets.token_hex(12)}" for t in ids},
    )


def sandbox_world(
    workload: Workload, history_days: int, *, ads: int = 2, capacity: int = 2
) -> dict:
    """The sandbox world of the workload: each account has 1 campaign and 1 ad set of 2 ads
    (small), or, for ``ads`` a multiple of 20, 4 campaigns of 1 ad set of ``ads / 4`` ads."""
    campaigns, per_adset = (4, ads // 4) if ads % 20 == 0 else (1, ads)
    accounts = [a for accounts in workload.tenants.values() for a in accounts]
    return {
        "seed": 29,
        "tokens": [
            {"token": workload.tokens[t], "accounts": a} for t, a in workload.tenants.items()
        ],
        "accounts": [
            {
                "id": account,
                "name": f"Bench account {i}",
                "currency": ["SEK", "EUR", "AUD"][i % 3],
                "timezone_name": ["Europe/Stockholm", "UTC", "Australia/Sydney"][i % 3],
                "history_days": history_days,
                "campaigns": campaigns,
                "adsets_per_campaign": 1,
                "ads_per_adset": per_adset,
                "capacity": capacity,
            }
            for i, account in enumerate(accounts)
        ],
    }


def write_registry(workload: Workload, path: Path) -> None:
    tenants = [
        {"id": t, "name": f"Bench tenant {n}", "token_env": workload.token_env(n), "accounts": a}
        for n, (t, a) in enumerate(workload.tenants.items())
    ]
    path.write_text(yaml.safe_dump({"tenants": tenants}))


def pg_defaults() -> None:
    """Without PGHOST, the server meta-elt itself falls back to: 127.0.0.1:5432, user postgres."""
    if not os.environ.get("PGHOST"):
        os.environ["PGHOST"] = "127.0.0.1"
        os.environ.setdefault("PGPORT", "5432")
        os.environ.setdefault("PGUSER", "postgres")


def admin_connection() -> psycopg.Connection:
    try:
        return psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()).split("failed: ")[-1]
        where = f"{os.environ.get('PGHOST')}:{os.environ.get('PGPORT', '5432')}"
        raise BenchError(
            f"PostgreSQL at {where} is not reachable ({reason}); set PGHOST, PGPORT, PGUSER "
            "(and PGPASSWORD) to a server where this user may create databases"
        ) from None


def create_database() -> str:
    name = f"meta_elt_bench_{uuid.uuid4().hex[:10]}"
    with admin_connection() as conn:
        conn.execute(f"create database {name}")
    return name


def drop_database(name: str) -> None:
    with admin_connection() as conn:
        conn.execute(f"drop database if exists {name} with (force)")


def load_average() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 on), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants (zombies included)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := proc_stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_cpu(root: int) -> float:
    """CPU seconds of the tree: each live process's own time and that of its reaped children.
    A process orphaned before it ends (reparented out of the tree) escapes the count."""
    total = 0
    for pid in process_tree(root):
        fields = proc_stat(pid)
        if fields:
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / CLOCK_TICKS


def sandbox_counts(sandbox: SandboxServer) -> dict:
    stats = sandbox.stats()
    calls = sum(int(n) for by_status in stats["requests"].values() for n in by_status.values())
    return {
        "report_jobs": stats["jobs_created"],
        "api_calls": calls,
        "throttled": stats.get("throttled_total", 0),
    }


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return (
        f"median {statistics.median(values):.1f} s (min {min(values):.1f}, max {max(values):.1f})"
    )


@dataclass
class Seen:
    kind: str
    first: float
    last: float
    cpu: float = 0.0
    parent: int = 0


def kind_of(pid: int) -> str | None:
    """What a process of the sync is, from its command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    words = [Path(a.decode(errors="replace")).name for a in argv if a]
    joined = " ".join(words)
    if "tap-meta-insights" in words:
        return "discovery" if "--discover" in words else "tap"
    if "target-postgres-window-state" in joined or "target-postgres" in words[:2]:
        return "target"
    if "meltano" in words[:2]:
        return "meltano"
    if "dbt" in words[:2]:
        return "dbt"
    if "meta-elt" in words[:2]:
        return "meta-elt"
    return None


@dataclass
class Sampler:
    """The processes under ``root``, their first and last sighting and their CPU (own time, as
    last seen: a process living less than one period may be missed; the totals come from
    RUSAGE_CHILDREN)."""

    root: int
    started: float
    seen: dict[int, Seen] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            children: dict[int, list[int]] = {}
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit() and (fields := proc_stat(int(entry.name))):
                    children.setdefault(int(fields[1]), []).append(int(entry.name))
            now = time.monotonic() - self.started
            todo = [self.root]
            while todo:
                pid = todo.pop()
                todo.extend(children.get(pid, []))
                fields = proc_stat(pid)
                if not fields:
                    continue
                if pid not in self.seen:
                    kind = kind_of(pid)
                    if kind is None:
                        continue
                    self.seen[pid] = Seen(kind, now, now, parent=int(fields[1]))
                entry = self.seen[pid]
                entry.last = now
                entry.cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            self.stop.wait(0.05)

    def by_kind(self) -> dict[str, float]:
        totals = dict.fromkeys(KINDS, 0.0)
        for entry in self.seen.values():
            totals[entry.kind] += entry.cpu
        return totals

    def spans(self, kind: str) -> list[Seen]:
        return sorted((s for s in self.seen.values() if s.kind == kind), key=lambda s: s.first)


def run_sampled(command: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Run ``command`` (its output captured), sampled: wall, CPU of its tree (RUSAGE_CHILDREN),
    CPU by process kind, the load average before and after; BenchError if it fails."""
    load_before, cpu_before = load_average(), children_cpu()
    started = time.monotonic()
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    sampler = Sampler(proc.pid, started)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    output, _ = proc.communicate()
    wall = time.monotonic() - started
    sampler.stop.set()
    thread.join()
    if proc.returncode != 0:
        shown = " ".join(Path(command[0]).name.split() + command[1:3])
        raise BenchError(f"`{shown} ...` exited {proc.returncode}: {output[-800:]}")
    return {
        "command": " ".join(command[1:]),
        "wall": wall,
        "cpu": children_cpu() - cpu_before,
        "cpu_by_kind": sampler.by_kind(),
        "load": f"{load_before} -> {load_average()}",
        "sampler": sampler,
        "output": output,
    }


DBT_FINISHED = re.compile(r"Finished running .* in .*\(([\d.]+)s\)")


def dbt_run_seconds(log: Path) -> float | None:
    """dbt's own time for its last run in a meta-elt dbt log ("Finished running ... (X s)"):
    its SQL and tests, without its start-up and parse."""
    found = DBT_FINISHED.findall(log.read_text()) if log.exists() else []
    return float(found[-1]) if found else None


def extract_load_overheads(sampler: Sampler) -> list[float]:
    """Per `meltano run` (one tenant's extract and load): its lifetime less its tap's (the tap's
    waiting on the API and its work) and less the loader's drain after the tap: Meltano's
    start-up, the tap's discovery and start-up, Meltano's end."""
    overheads = []
    for pid, run in sampler.seen.items():
        if run.kind != "meltano":
            continue
        taps = [s for s in sampler.seen.values() if s.parent == pid and s.kind == "tap"]
        targets = [s for s in sampler.seen.values() if s.parent == pid and s.kind == "target"]
        if len(taps) == 1 and len(targets) == 1:
            tap, target = taps[0], targets[0]
            drain = max(0.0, target.last - tap.last)
            overheads.append((run.last - run.first) - (tap.last - tap.first) - drain)
    return overheads


def dbt_overhead(sampler: Sampler, dbt_run: float | None) -> float | None:
    """The `meltano invoke` of dbt's lifetime less dbt's own run time: Meltano's start-up, dbt's
    start-up, parse and artifacts."""
    if dbt_run is None:
        return None
    for pid, run in sampler.seen.items():
        if run.kind == "meltano" and any(
            s.parent == pid and s.kind == "dbt" for s in sampler.seen.values()
        ):
            return (run.last - run.first) - dbt_run
    return None


def one_run_timeline(result: dict) -> dict:
    """The timeline of a run_sampled meta-elt command with one extract and load (and
    ``result["dbt_run"]``, dbt's own run time, or None): when the tap started, its lifetime (its
    waiting on the API and its work), the loader's drain after it, what came after the load less
    dbt's run, and the overhead: the wall time less the tap's lifetime, the drain and dbt's run."""
    taps, targets = result["sampler"].spans("tap"), result["sampler"].spans("target")
    if len(taps) != 1 or len(targets) != 1:
        raise BenchError(f"expected one tap and one target, saw {len(taps)} and {len(targets)}")
    tap, target = taps[0], targets[0]
    dbt_run = result["dbt_run"] or 0.0
    lifetime, drain = tap.last - tap.first, max(0.0, target.last - tap.last)
    return {
        "before_tap": tap.first,
        "tap_lifetime": lifetime,
        "drain_after_tap": drain,
        "after_load": result["wall"] - target.last - dbt_run,
        "overhead_wall": result["wall"] - lifetime - drain - dbt_run,
    }
