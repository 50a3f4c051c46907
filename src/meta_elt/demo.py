"""`meta-elt demo`: the main job end to end on the Graph API sandbox and a provided PostgreSQL.

Steps: provide PostgreSQL → start the sandbox with orchestrate/demo/world.yml, its clock at
yesterday → `meta-elt backfill --no-build` for every account of every tenant (13 months) → move
the sandbox clock a day → `meta-elt sync --all` (and its one dbt build of the marts) →
`dbt test` → print coverage and spend reconciled against the sandbox's truth → write an HTML
report. Stops what it started.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from meta_elt import meltano_run, postgres, report, secrets, tenants
from meta_elt.dates import add_months

#: The demo's own database (never PGDATABASE: a demo must not write into real data). Each run
#: resets the schemas the demo creates in it, so every demo starts from scratch.
DEMO_DATABASE = os.environ.get("META_ELT_DEMO_DATABASE", "meta_elt_demo")
DEMO_SCHEMAS = ("raw_meta", "analytics", "analytics_staging", "meltano")
DEMO_MONTHS = int(os.environ.get("META_ELT_DEMO_MONTHS", "13"))
DEMO_WORLD = "orchestrate/demo/world.yml"
#: The sandbox's job latency is scaled down so the demo takes minutes, not hours; the tap polls
#: job status as much faster (5 s against Meta).
DEMO_TIME_SCALE = "0.05"
DEMO_POLL_INTERVAL = "0.25"


@dataclass
class Timings:
    steps: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str):
        print(f"\n== {name}", flush=True)
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps.append((name, time.monotonic() - started))


class Sandbox:
    """`meta-sandbox serve` as a child process, and its admin API."""

    def __init__(self, root: Path, world: Path) -> None:
        program = root / ".venv" / "bin" / "meta-sandbox"
        if not program.exists():  # a development tool: not in the meta-elt wheel
            raise SystemExit(
                f"meta-elt demo: the Graph API sandbox is not installed ({program}); run "
                "`make demo` in a checkout of the project, which installs it"
            )
        self.proc = subprocess.Popen(
            [
                str(program),
                "serve",
                "--port",
                "0",
                "--world",
                str(world),
                "--time-scale",
                DEMO_TIME_SCALE,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        at = line.find("http://")
        if at < 0:
            self.stop()
            raise RuntimeError(f"meta-sandbox did not start: {line.strip()!r}")
        self.base_url = line[at:].split()[0].rstrip("/")

    def admin(self, path: str, body: dict | None = None, method: str | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/__sandbox/{path}",
            data=data,
            method=method or ("POST" if data else "GET"),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _meta_elt(root: Path, *args: str) -> None:
    command = [str(root / ".venv" / "bin" / "meta-elt"), *args]
    print("$ meta-elt " + " ".join(args), flush=True)
    done = subprocess.run(command, cwd=root, check=False)
    if done.returncode != 0:
        raise SystemExit(f"meta-elt demo: `meta-elt {args[0]}` failed (exit {done.returncode})")


def _meltano(root: Path, token_variables: set[str], *args: str) -> None:
    """A Meltano command of the demo: its output goes to a log file; the terminal gets dbt's
    one-line summary (or the output's tail when it fails)."""
    print("$ meltano " + " ".join(args), flush=True)
    env = {**secrets.scrubbed_env(os.environ, token_variables), "DBT_USE_COLORS": "false"}
    done = subprocess.run(
        [*meltano_run.command(root, env), *args],
        cwd=root,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    output = meltano_run.strip_ansi(done.stdout + done.stderr)
    log = root / ".meltano" / "logs" / "meta-elt" / f"demo-{args[-1].replace(':', '-')}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(output, encoding="utf-8")
    lines = output.splitlines()
    summary = [line.split("  ", 1)[-1].strip() for line in lines if "Done. PASS=" in line]
    if done.returncode != 0:
        print("\n".join(lines[-20:]), file=sys.stderr)
        raise SystemExit(f"meta-elt demo: `meltano {' '.join(args)}` failed (log: {log})")
    print(f"  {summary[-1] if summary else 'done'} (log: {log})", flush=True)


def _truth_spend(sandbox: Sandbox, account: str, since: dt.date, until: dt.date) -> Decimal:
    answer = sandbox.admin(f"truth?account={account}&level=account&since={since}&until={until}")
    rows = answer["data"] if isinstance(answer, dict) else answer
    return sum((Decimal(str(r.get("spend", "0"))) for r in rows), Decimal("0"))


def _reset(server: postgres.Server) -> None:
    with server.connect(autocommit=True) as conn:
        for schema in DEMO_SCHEMAS:
            conn.execute(f"drop schema if exists {schema} cascade")


def run(root: Path, report_path: Path | None = None) -> int:
    registry = tenants.load(tenants.registry_path(root), root)
    timings = Timings()
    started = time.monotonic()
    with postgres.provide(DEMO_DATABASE) as server:
        _reset(server)
        os.environ.update(server.libpq_env())  # every child uses this server
        print(f"PostgreSQL: {server.describe()}")
        world = Path(os.environ.get("META_ELT_DEMO_WORLD") or root / DEMO_WORLD)
        sandbox = Sandbox(root, world)
        try:
            described = sandbox.admin("world")
            tokens = {a: t["token"] for t in described["tokens"] for a in t["accounts"]}
            for tenant in registry.values():
                os.environ[tenant.token_env] = tokens[tenant.accounts[0]]
            os.environ["TAP_FACEBOOK_API_URL"] = sandbox.base_url
            os.environ["TAP_FACEBOOK_POLL_INTERVAL"] = DEMO_POLL_INTERVAL
            today = dt.date.today()
            yesterday = today - dt.timedelta(days=1)
            sandbox.admin("clock", {"now": f"{yesterday}T12:00:00Z"})
            since = add_months(yesterday, -DEMO_MONTHS).replace(day=1)
            print(f"Graph API sandbox: {sandbox.base_url} (clock at {yesterday})")

            for tenant in registry.values():
                for account in tenant.accounts:
                    with timings.step(f"backfill {tenant.name} {account}"):
                        _meta_elt(
                            root, "backfill", "--tenant", tenant.id, "--account", account,
                            "--since", since.isoformat(), "--until", yesterday.isoformat(),
                            "--chunk-size", "1", "--no-build",
                        )  # fmt: skip
            # The marts are built once, by the sync, after every load (as Dagster's job does),
            # not once per account backfilled.
            sandbox.admin("clock", {"advance_days": 1})
            with timings.step("daily sync and dbt build, all tenants (sandbox clock +1 day)"):
                _meta_elt(root, "sync", "--all", "--parallel", "2")
            with timings.step("dbt test"):
                _meltano(root, tenants.token_variables(registry), "invoke", "dbt-postgres:test")

            with server.connect() as conn:
                rows = report.coverage_rows(conn)
                daily_spend = report.daily_spend(conn)
                report_data = report.load(conn)
            clock = sandbox.admin("clock")
            now = dt.datetime.fromisoformat(str(clock["now"]).replace("Z", "+00:00"))
            reconciliation = []
            for tenant in registry.values():
                for account in tenant.accounts:
                    mart = sum(
                        (Decimal(str(s)) for (a, _d, s) in daily_spend if a == account),
                        Decimal("0"),
                    )
                    first = min((d for (a, d, _s) in daily_spend if a == account), default=since)
                    last = max((d for (a, d, _s) in daily_spend if a == account), default=today)
                    truth = _truth_spend(sandbox, account, first, last)
                    reconciliation.append((tenant.name, account, mart, truth))
        finally:
            sandbox.stop()
        timings.steps.append(("total", time.monotonic() - started))

    ok = report.print_summary(rows, reconciliation)
    path = report.write_html(
        report_path or root / "output" / "demo-report.html",
        report_data,
        now=now,  # the sandbox's clock: each account's today is its partial day
        reconciliation=reconciliation,
        timings=timings.steps,
        tenant_names={tenant.id: tenant.name for tenant in registry.values()},
        title="Meta Ads insights: demo report",
        truth_label="sandbox's truth",
    )
    print(f"\nReport: {path}")
    for name, seconds in timings.steps:
        print(f"  {name:<55} {seconds:7.1f} s")
    return 0 if ok else 1


def main(report_path: Path | None = None) -> int:
    return run(postgres.project_root(), report_path)


if __name__ == "__main__":
    sys.exit(main())
