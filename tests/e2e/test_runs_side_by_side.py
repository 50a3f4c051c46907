"""Runs on our side: they fail fast and small, run side by side, refuse a second run of the same
work, and a sync plans from what was synced. (A killed run leaving no orphan and resuming exactly:
test_crash_resume.py.)

One database of this module's own (a unique name, dropped afterwards) that starts empty, so the
first runs also race for Meltano's system database; one sandbox world of two tenants.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
import yaml
from meta_sandbox.testing import SandboxServer

from meta_elt import postgres
from tests.support import ROOT

TODAY = dt.date.today()
SANDBOX_TODAY = TODAY - dt.timedelta(days=2)
SINCE = SANDBOX_TODAY - dt.timedelta(days=45)
UNTIL = SANDBOX_TODAY - dt.timedelta(days=1)
RETAIL = "2d6f8a10-4b3c-4e5d-9f60-7a8b9c0d1e2f"
SURF = "8e7d6c5b-4a39-4281-a7f6-e5d4c3b2a190"
ACCOUNTS = {RETAIL: ["act_400001", "act_400002"], SURF: ["act_400003"]}
TOKENS = {RETAIL: "side-token-retail", SURF: "side-token-surf"}
TOKEN_ENV = {RETAIL: "SIDE_TOKEN_RETAIL", SURF: "SIDE_TOKEN_SURF"}
ALL_ACCOUNTS = [a for accounts in ACCOUNTS.values() for a in accounts]


def _world() -> dict:
    return {
        "seed": 31,
        "now": f"{SANDBOX_TODAY}T12:00:00Z",
        "tokens": [{"token": TOKENS[t], "accounts": ACCOUNTS[t]} for t in ACCOUNTS],
        "accounts": [
            {
                "id": account,
                "name": f"Side account {i}",
                "currency": "USD",
                "timezone_name": "UTC",
                "history_days": 90,
                "campaigns": 2,
                "adsets_per_campaign": 1,
                "ads_per_adset": 2,
                "capacity": 4,
            }
            for i, account in enumerate(ALL_ACCOUNTS)
        ],
    }


@dataclass
class Stack:
    sandbox: SandboxServer
    server: postgres.Server
    env: dict[str, str]

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "meta-elt"), *args],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def meta_elt(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        proc = self.start(*args, **env)
        stdout, stderr = proc.communicate(timeout=600)
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    def query(self, sql: str, *params: object) -> list[tuple]:
        with self.server.connect() as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def stack(pg_server: postgres.Server, tmp_path_factory) -> Iterator[Stack]:
    database = f"meta_elt_side_{uuid.uuid4().hex[:8]}"
    server = postgres.with_database(pg_server, database)
    registry = tmp_path_factory.mktemp("registry") / "tenants.yml"
    registry.write_text(
        yaml.safe_dump(
            {
                "tenants": [
                    {"id": t, "name": n, "token_env": TOKEN_ENV[t], "accounts": ACCOUNTS[t]}
                    for t, n in ((RETAIL, "Retail"), (SURF, "Surf"))
                ]
            }
        )
    )
    with SandboxServer(world=_world(), time_scale=0.001) as sandbox:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "TAP_FACEBOOK_"))},
            **server.libpq_env(),
            "META_ELT_TENANTS": str(registry),
            **{TOKEN_ENV[t]: TOKENS[t] for t in TOKENS},
            "TAP_FACEBOOK_API_URL": sandbox.base_url,
            "TAP_FACEBOOK_POLL_INTERVAL": "0.05",
        }
        yield Stack(sandbox, server, env)
    with pg_server.connect(database="postgres", autocommit=True) as conn:
        conn.execute(f"drop database if exists {database} with (force)")


def _assert_equals_truth(stack: Stack, tenant: str, account: str, since, until) -> None:
    truth = {
        (r["ad_id"], r["date_start"]): Decimal(r["spend"])
        for r in stack.sandbox.truth(
            account=account, level="ad", since=str(since), until=str(until)
        )
    }
    rows = stack.query(
        "select object_id, date::text, spend from analytics.meta_insights_levels "
        "where tenant_id = %s and ad_account_id = %s and level = 'ad' and date between %s and %s",
        tenant,
        account,
        since,
        until,
    )
    assert truth and {(o, d): Decimal(s) for o, d, s in rows} == truth, account


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_api_fails_in_one_line_before_anything_is_created(stack: Stack):
    untouched = f"meta_elt_untouched_{uuid.uuid4().hex[:8]}"
    url = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    done = stack.meta_elt(
        "backfill", "--tenant", RETAIL, "--account", ACCOUNTS[RETAIL][0],
        "--since", str(SINCE), "--until", str(UNTIL),
        TAP_FACEBOOK_API_URL=url, PGDATABASE=untouched,
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "does not answer" in done.stderr and "TAP_FACEBOOK_API_URL" in done.stderr
    found = stack.query("select 1 from pg_database where datname = %s", untouched)
    assert found == [], "nothing was created"


@pytest.fixture(scope="module")
def side_by_side(stack: Stack) -> list[tuple[int, str]]:
    """Three backfills and a sync started at once: (exit code, stderr) of each. Every account
    is then loaded over [SINCE, UNTIL] and synced, whichever test asks first."""
    range_args = ["--since", str(SINCE), "--until", str(UNTIL)]
    runs = [
        stack.start("backfill", "--tenant", tenant, "--account", account, *range_args)
        for tenant, accounts in ACCOUNTS.items()
        for account in accounts
    ]
    runs.append(stack.start("sync", "--all", "--lookback-days", "3"))
    outcomes = []
    for proc in runs:
        _, stderr = proc.communicate(timeout=600)
        outcomes.append((proc.returncode, stderr))
    return outcomes


def test_three_backfills_and_a_sync_side_by_side_all_succeed(stack: Stack, side_by_side):
    for returncode, stderr in side_by_side:
        assert returncode == 0, stderr[-3000:]
    for tenant, accounts in ACCOUNTS.items():
        for account in accounts:
            _assert_equals_truth(stack, tenant, account, SINCE, UNTIL)


def test_a_second_backfill_of_the_same_range_is_refused_naming_the_holder(stack: Stack):
    account = ACCOUNTS[SURF][0]
    args = [
        "backfill", "--tenant", SURF, "--account", account,
        "--since", str(SINCE), "--until", str(UNTIL), "--concurrency", "1",
    ]  # fmt: skip
    log = ROOT / ".meltano/logs/meta-elt" / f"backfill-{SURF}-{account}-{SINCE}-{UNTIL}.log"
    log.unlink(missing_ok=True)
    # The first run's first job hangs until the tap's job timeout (20 s) splits it: the first run
    # holds its lock from before that job until after its dbt build, well after the second (a
    # start and one lock query) has been refused.
    hang = stack.sandbox.add_fault({"kind": "hang_jobs", "account": account, "count": 1})
    try:
        first = stack.start(*args, TAP_FACEBOOK_JOB_TIMEOUT="20")
        deadline = time.monotonic() + 120
        while not any(f["id"] == hang and f["fired"] for f in stack.sandbox.faults()):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        stack.sandbox.clear_faults()
    second = stack.meta_elt(*args)
    _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-3000:]
    assert second.returncode == 1
    errors = [line for line in second.stderr.splitlines() if line.startswith("meta-elt: error:")]
    assert len(errors) == 1, second.stderr
    assert f"in use by 'meta-elt[{first.pid}] backfill {account} {SINCE}" in errors[0]


def test_a_failing_account_fails_alone_and_the_next_sync_plans_only_the_lookback(
    stack: Stack, side_by_side
):
    bad, good = ACCOUNTS[RETAIL][1], ACCOUNTS[RETAIL][0]
    stack.sandbox.add_fault({"kind": "revoke_account", "token": TOKENS[RETAIL], "account": bad})
    try:
        done = stack.meta_elt("sync", "--all", "--lookback-days", "5")
    finally:
        stack.sandbox.clear_faults()
    assert done.returncode == 1
    failing = [line for line in done.stderr.splitlines() if "FAILED" in line]
    assert len(failing) == 1 and bad in failing[0], done.stderr
    assert f"sync {RETAIL} (Retail): {good} from" in done.stderr
    ok = [line for line in done.stderr.splitlines() if " ok " in line]
    assert {line.split()[0] for line in ok} == {RETAIL, SURF}

    stack.sandbox.reset_stats()
    again = stack.meta_elt("sync", "--all", "--lookback-days", "5")
    assert again.returncode == 0, again.stderr[-3000:]
    floor = TODAY - dt.timedelta(days=7)  # 5 days back from a bookmark at most 2 days old
    planned = re.findall(r"^meta-elt: sync \S+ \(.*\): .* from (\S+)$", again.stderr, re.M)
    assert len(planned) == len(ACCOUNTS), again.stderr  # one plan line per tenant
    for start in planned:
        assert dt.date.fromisoformat(start) >= floor, start
    reports, windows_per_report = 3, 2  # a 5-day range spans at most two calendar months
    assert stack.sandbox.stats()["jobs_created"] <= reports * len(ALL_ACCOUNTS) * windows_per_report
    for tenant, accounts in ACCOUNTS.items():
        for account in accounts:
            _assert_equals_truth(stack, tenant, account, SINCE, UNTIL)
