"""Tenant isolation end to end: one ad account under two tenants, tokens that reach only their
tap and never the disk, and PostgreSQL readers who see only their tenant.

One database of this module's own (a unique name, dropped afterwards) and one sandbox world: the
agency tenant A reads act_300001 and act_300002, the client tenant B reads act_300001 with a token
of its own. The scenario's states (the agency's killed backfill, the client's backfill) are
module fixtures: the tests run in any order.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import yaml
from meta_sandbox.testing import SandboxServer

from meta_elt import postgres
from tests.support import ROOT, windows_done

TODAY = dt.date.today()
SANDBOX_TODAY = TODAY - dt.timedelta(days=2)
SINCE = SANDBOX_TODAY - dt.timedelta(days=40)
UNTIL = SANDBOX_TODAY - dt.timedelta(days=1)
AGENCY = "0f8e1c52-7a3b-4d9e-8c61-2b5a9d0e7f13"
CLIENT = "c41d2e7a-93b8-4f06-a1e5-6d7c8b9a0f24"
SHARED = "act_300001"
ACCOUNTS = {AGENCY: [SHARED, "act_300002"], CLIENT: [SHARED]}
TOKENS = {AGENCY: "iso-token-agency-5f2c9a", CLIENT: "iso-token-client-8b1e47"}
TOKEN_ENV = {AGENCY: "ISO_TOKEN_AGENCY", CLIENT: "ISO_TOKEN_CLIENT"}
MARTS = ("meta_insights_daily", "meta_insights_levels", "meta_insights_coverage")


def _world() -> dict:
    return {
        "seed": 23,
        "now": f"{SANDBOX_TODAY}T12:00:00Z",
        "tokens": [{"token": TOKENS[t], "accounts": ACCOUNTS[t]} for t in ACCOUNTS],
        "accounts": [
            {
                "id": account,
                "name": f"Isolation account {i}",
                "currency": "EUR",
                "timezone_name": zone,
                "history_days": 90,
                "campaigns": 2,
                "adsets_per_campaign": 1,
                "ads_per_adset": 2,
                "capacity": 4,
            }
            for i, (account, zone) in enumerate(
                [(SHARED, "Europe/Berlin"), ("act_300002", "America/Chicago")]
            )
        ],
    }


@dataclass
class Stack:
    sandbox: SandboxServer
    server: postgres.Server
    env: dict[str, str]
    started: float = field(default_factory=time.time)

    def meta_elt_cmd(self, *args: str) -> list[str]:
        return [str(ROOT / ".venv" / "bin" / "meta-elt"), *args]

    def meta_elt(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.meta_elt_cmd(*args), cwd=ROOT, env=self.env, capture_output=True, text=True
        )

    def query(self, sql: str, *params: object) -> list[tuple]:
        with self.server.connect() as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def stack(pg_server: postgres.Server, tmp_path_factory) -> Iterator[Stack]:
    database = f"meta_elt_iso_{uuid.uuid4().hex[:8]}"
    server = postgres.with_database(pg_server, database)
    registry = tmp_path_factory.mktemp("registry") / "tenants.yml"
    registry.write_text(
        yaml.safe_dump(
            {
                "tenants": [
                    {"id": t, "name": n, "token_env": TOKEN_ENV[t], "accounts": ACCOUNTS[t]}
                    for t, n in ((AGENCY, "Agency"), (CLIENT, "Client"))
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


def _truth(stack: Stack, account: str, since: dt.date, until: dt.date) -> dict[tuple, tuple]:
    rows = stack.sandbox.truth(account=account, level="ad", since=str(since), until=str(until))
    return {
        (r["ad_id"], r["date_start"]): (Decimal(r["spend"]), int(r["impressions"])) for r in rows
    }


def _marts(stack: Stack, tenant: str, account: str, since, until) -> dict[tuple, tuple]:
    rows = stack.query(
        "select object_id, date::text, spend, impressions from analytics.meta_insights_levels "
        "where tenant_id = %s and level = 'ad' and ad_account_id = %s and date between %s and %s",
        tenant,
        account,
        since,
        until,
    )
    return {(o, d): (Decimal(s), int(i)) for o, d, s, i in rows}


def _assert_each_tenant_equals_truth(stack: Stack, since: dt.date, until: dt.date) -> None:
    for tenant, accounts in ACCOUNTS.items():
        for account in accounts:
            truth = _truth(stack, account, since, until)
            assert truth, "the sandbox delivered in this range"
            assert _marts(stack, tenant, account, since, until) == truth, (tenant, account)
    # Both tenants in one verify: one recomputation of the coverage, each tenant's tables.
    verify = stack.meta_elt("verify", *(x for tenant in ACCOUNTS for x in ("--tenant", tenant)))
    assert verify.returncode == 0, verify.stderr[-2000:]
    assert verify.stderr.count("every synced day is present") == len(ACCOUNTS), verify.stderr
    for tenant in ACCOUNTS:
        assert f"tenant {tenant}" in verify.stderr, verify.stderr


# ------------------------------------------------------------------ what a run's processes hold
def _children(root_pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root_pid]
    while frontier:
        pid = frontier.pop()
        kids = [child for child, parent in parents.items() if parent == pid]
        found.extend(kids)
        frontier.extend(kids)
    return found


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _observe(root_pid: int, seen: dict[int, tuple[str, bytes]]) -> None:
    """Record the command line and environment of every descendant alive now.

    A child caught between fork and exec is still a copy of meta-elt (its command line, and the
    environment meta-elt was started with): it is not recorded until it has exec'd its own
    program, whose environment is the one meta-elt gave it."""
    try:
        own = _cmdline(root_pid)
    except OSError:
        return
    for pid in _children(root_pid):
        if pid in seen:
            continue
        try:
            cmdline = _cmdline(pid)
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if cmdline != own:  # exec'd by now
            seen[pid] = (cmdline, environ)


def _files_holding(token: str, since: float) -> list[Path]:
    """Files written since ``since`` under the project tree and the temp dir that hold ``token``
    (other checkouts of the project under the temp dir excepted)."""
    needle = token.encode()
    hits = []
    for top in (ROOT, Path(tempfile.gettempdir())):
        for dirpath, dirnames, filenames in os.walk(top):
            # Skip version control, virtualenvs and other checkouts of this project (their test
            # sources and bytecode hold these very constants).
            dirnames[:] = [
                d
                for d in dirnames
                if d not in (".git", ".venv") and not (Path(dirpath, d, ".git").exists())
            ]
            for name in filenames:
                path = Path(dirpath) / name
                try:
                    if path.is_symlink() or path.stat().st_mtime < since - 1:
                        continue
                    if not path.is_file():
                        continue
                    if needle in path.read_bytes():
                        hits.append(path)
                except OSError:
                    continue
    return hits


def _database_holding(stack: Stack, token: str) -> list[str]:
    tables = stack.query(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema not in ('pg_catalog', 'information_schema') "
        "and table_type = 'BASE TABLE'"
    )
    hits = []
    for schema, table in tables:
        found = stack.query(
            f'select count(*) from "{schema}"."{table}" as t where t::text like %s', f"%{token}%"
        )
        if found[0][0]:
            hits.append(f"{schema}.{table}")
    return hits


# ------------------------------------------------------------------ the scenario's states
def _modified_since(path: Path, since: float) -> bool:
    """Whether ``path`` was written since ``since`` (a file another run removed was not)."""
    try:
        return path.stat().st_mtime >= since
    except FileNotFoundError:
        return False


@dataclass
class KilledBackfill:
    seen: dict[int, tuple[str, bytes]]  # the processes observed: command line, environment
    during: dict[str, list[str]]  # files holding each token while it ran
    after_kill: dict[str, list[str]]
    configs: list[Path]  # the plugin files Meltano wrote for it
    resumed: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def agency_killed(stack: Stack) -> KilledBackfill:
    """The agency's backfill of the shared account, watched, killed after its first window and
    resumed (the scenario's states are fixtures: the tests run in any order)."""
    args = [
        "backfill", "--tenant", AGENCY, "--account", SHARED,
        "--since", str(SINCE), "--until", str(UNTIL), "--chunk-size", "1", "--concurrency", "1",
    ]  # fmt: skip
    log = ROOT / ".meltano/logs/meta-elt" / f"backfill-{AGENCY}-{SHARED}-{SINCE}-{UNTIL}.log"
    log.unlink(missing_ok=True)
    started = time.time()
    proc = subprocess.Popen(
        stack.meta_elt_cmd(*args),
        cwd=ROOT,
        env={**stack.env, "TAP_FACEBOOK_POLL_INTERVAL": "0.3"},  # slow enough to look inside
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    seen: dict[int, tuple[str, bytes]] = {}
    deadline = time.monotonic() + 180
    while not windows_done(log.read_text() if log.exists() else ""):
        assert proc.poll() is None, "the backfill ended before it could be killed"
        assert time.monotonic() < deadline, "no window completed in time"
        _observe(proc.pid, seen)
        time.sleep(0.05)
    _observe(proc.pid, seen)
    during = {t: _files_holding(t, started) for t in TOKENS.values()}
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    after_kill = {t: _files_holding(t, started) for t in TOKENS.values()}
    configs = [
        path
        for path in (ROOT / ".meltano" / "workers").glob("*/run/*/*.json")
        if _modified_since(path, started - 1)
    ]
    # The resume loads only: the client's backfill (next fixture) builds the marts for both.
    resumed = stack.meta_elt(*args, "--resume", "--no-build")
    return KilledBackfill(seen, during, after_kill, configs, resumed)


@dataclass
class ClientBackfill:
    started: float
    returncode: int
    stderr: str
    seen: dict[int, tuple[str, bytes]]
    agency_other: subprocess.CompletedProcess[str]  # the agency's own other account


@pytest.fixture(scope="module")
def client_backfilled(stack: Stack, agency_killed: KilledBackfill) -> ClientBackfill:
    """The client backfills the account the agency has too (watched), then the agency its other
    account: both tenants loaded."""
    started = time.time()
    client_args = [
        "backfill", "--tenant", CLIENT, "--account", SHARED,
        "--since", str(SINCE), "--until", str(UNTIL),
    ]  # fmt: skip
    proc = subprocess.Popen(
        stack.meta_elt_cmd(*client_args),
        cwd=ROOT,
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: dict[int, tuple[str, bytes]] = {}
    while proc.poll() is None:
        _observe(proc.pid, seen)
        time.sleep(0.02)
    stderr = proc.stderr.read() if proc.stderr else ""
    other = stack.meta_elt(
        "backfill", "--tenant", AGENCY, "--account", "act_300002",
        "--since", str(SINCE), "--until", str(UNTIL),
    )  # fmt: skip
    return ClientBackfill(started, proc.returncode, stderr, seen, other)


# ------------------------------------------------------------------ the tests
def test_killed_backfill_leaves_no_token_anywhere_and_resumes(agency_killed: KilledBackfill):
    seen = agency_killed.seen
    assert any("tap-meta-insights" in cmd for cmd, _ in seen.values()), "the tap was observed"
    for cmd, environ in seen.values():
        for token in TOKENS.values():
            assert token.encode() not in environ, f"a token in the environment of {cmd}"
    no_files = {t: [] for t in TOKENS.values()}
    assert agency_killed.during == agency_killed.after_kill == no_files
    assert agency_killed.configs, "Meltano wrote this run's plugin files"
    for config in agency_killed.configs:
        with contextlib.suppress(FileNotFoundError):  # another run's file, removed since
            assert config.stat().st_mode & 0o077 == 0, f"{config} is readable by others"
    resumed = agency_killed.resumed
    assert resumed.returncode == 0, resumed.stderr[-3000:]


def test_shared_account_second_tenant_keeps_the_first_tenants_copy(
    stack: Stack, client_backfilled: ClientBackfill
):
    run = client_backfilled
    assert run.returncode == 0, run.stderr[-3000:]
    commands = [cmd for cmd, _ in run.seen.values()]
    for program in ("tap-meta-insights", "target-postgres", "dbt"):
        assert any(program in cmd for cmd in commands), f"{program} was observed"
    for cmd, environ in run.seen.values():
        for token in TOKENS.values():
            assert token.encode() not in environ, f"a token in the environment of {cmd}"
    assert run.agency_other.returncode == 0, run.agency_other.stderr[-3000:]
    _assert_each_tenant_equals_truth(stack, SINCE, UNTIL)
    for token in TOKENS.values():
        assert _files_holding(token, run.started) == []
        assert _database_holding(stack, token) == []


def test_syncs_in_the_other_order_keep_both_copies_exact(stack: Stack, client_backfilled):
    stack.sandbox.advance_clock(days=1)
    new_today = SANDBOX_TODAY + dt.timedelta(days=1)
    # The client first, then the agency (one sync extracts its tenants in the order given).
    done = stack.meta_elt(
        "sync", "--tenant", CLIENT, "--tenant", AGENCY, "--lookback-days", "5"
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    synced = re.findall(r"^meta-elt: sync (\S+) \(", done.stderr, re.M)
    assert synced == [CLIENT, AGENCY], done.stderr[-3000:]
    _assert_each_tenant_equals_truth(stack, SINCE, new_today)
    per_tenant = stack.query(
        "select tenant_id, count(*) from analytics.meta_insights_levels "
        "where ad_account_id = %s group by tenant_id order by tenant_id",
        SHARED,
    )
    assert [t for t, _ in per_tenant] == sorted([AGENCY, CLIENT])
    assert per_tenant[0][1] == per_tenant[1][1], "two complete copies of the shared account"


def _as_reader(stack: Stack, tenant: str | None) -> psycopg.Connection:
    conn = stack.server.connect()
    conn.execute("set role meta_reader")
    if tenant is not None:
        conn.execute("select set_config('app.tenant_id', %s, false)", (tenant,))
    return conn


def test_a_reader_sees_only_its_tenant_and_cannot_write(stack: Stack, client_backfilled):
    for mart in MARTS:
        for tenant in (AGENCY, CLIENT):
            with _as_reader(stack, tenant) as conn:
                seen = conn.execute(f"select distinct tenant_id from analytics.{mart}").fetchall()
            assert seen == [(tenant,)], (mart, tenant, seen)
        with _as_reader(stack, None) as conn:
            assert conn.execute(f"select count(*) from analytics.{mart}").fetchone() == (0,)
    statements = [
        "insert into analytics.meta_insights_levels (tenant_id) values ('x')",
        "update analytics.meta_insights_levels set spend = 0",
        "delete from analytics.meta_insights_daily",
        "select count(*) from raw_meta.insights_ad",
        "select count(*) from analytics_staging.stg_meta_ads__insights",
    ]
    for statement in statements:
        with _as_reader(stack, AGENCY) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    # The owner's incremental build still works with the policies in place.
    done = stack.meta_elt("sync", "--tenant", AGENCY, "--lookback-days", "1")
    assert done.returncode == 0, done.stderr[-3000:]
