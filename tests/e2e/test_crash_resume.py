"""kill -9 at any moment, then --resume: the data equals the sandbox's truth, no row twice, no
process left behind, and only the windows that were not yet loaded are extracted again (the
loader confirms state per window: load/target-postgres-window-state).

One database and one sandbox world of this module's own; each case backfills its own range.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from meta_sandbox.testing import SandboxServer

from meta_elt import postgres
from tests.support import ROOT, windows_done

TODAY = dt.date.today()
SANDBOX_TODAY = TODAY - dt.timedelta(days=2)
TENANT = "5b1e9c3d-7f2a-4e8b-9d06-1c2b3a4d5e6f"
ACCOUNT = "act_500001"
TOKEN = "crash-token"
CONCURRENCY = 1
#: Windows the loader committed whose state Meltano had not yet saved when it was killed (it
#: saves each state the loader confirms as it reads it): these are extracted again.
UNSAVED_STATES = 2


@dataclass
class Stack:
    sandbox: SandboxServer
    server: postgres.Server
    env: dict[str, str]

    def query(self, sql: str, *params: object) -> list[tuple]:
        with self.server.connect() as conn:
            return conn.execute(sql, params).fetchall()


def _windows_loaded(stack: Stack, since: dt.date, until: dt.date) -> int:
    """Windows of [since, until] whose rows are committed (the loader writes a window last)."""
    return stack.query(
        "select count(*) from raw_meta.insights_windows "
        "where tenant_id = %s and account_id = %s "
        "and date_start::date >= %s and date_stop::date <= %s",
        TENANT, ACCOUNT, since, until,
    )[0][0]  # fmt: skip


@pytest.fixture(scope="module")
def stack(pg_server: postgres.Server, tmp_path_factory) -> Iterator[Stack]:
    database = f"meta_elt_crash_{uuid.uuid4().hex[:8]}"
    server = postgres.with_database(pg_server, database)
    registry = tmp_path_factory.mktemp("registry") / "tenants.yml"
    registry.write_text(
        yaml.safe_dump(
            {
                "tenants": [
                    {"id": TENANT, "name": "Crash", "token_env": "CRASH_TOKEN",
                     "accounts": [ACCOUNT]}
                ]
            }
        )
    )  # fmt: skip
    world = {
        "seed": 41,
        "now": f"{SANDBOX_TODAY}T12:00:00Z",
        "tokens": [{"token": TOKEN, "accounts": [ACCOUNT]}],
        "accounts": [
            {"id": ACCOUNT, "currency": "EUR", "timezone_name": "Europe/Paris",
             "history_days": 800, "campaigns": 1, "adsets_per_campaign": 1, "ads_per_adset": 2,
             "capacity": 4}
        ],
    }  # fmt: skip
    with SandboxServer(world=world, time_scale=0.001) as sandbox:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "TAP_FACEBOOK_"))},
            **server.libpq_env(),
            "META_ELT_TENANTS": str(registry),
            "CRASH_TOKEN": TOKEN,
            "TAP_FACEBOOK_API_URL": sandbox.base_url,
            "TAP_FACEBOOK_POLL_INTERVAL": "0.5",
            "TARGET_POSTGRES_STATE_CONFIRM_SECONDS": "0",
        }
        yield Stack(sandbox, server, env)
    with pg_server.connect(database="postgres", autocommit=True) as conn:
        conn.execute(f"drop database if exists {database} with (force)")


def _tree(root_pid: int) -> dict[int, str]:
    """pid → command line of every descendant of ``root_pid``."""
    parents, commands = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
                commands[int(entry.name)] = (
                    (entry / "cmdline").read_bytes().decode(errors="replace")
                )
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = {}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid:
                found[child] = commands.get(child, "")
                frontier.append(child)
    return found


def _marked(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


CASES = [
    # (what is killed, windows done when it is killed, months backfilled: 3 reports x 7 windows)
    ("tap", 9, 6),
    ("tree", 14, 6),
    ("meta-elt", 11, 6),
]


@pytest.mark.parametrize(("victim", "after", "months"), CASES)
def test_kill_then_resume_redoes_only_unloaded_windows(stack: Stack, victim, after, months):
    index = CASES.index((victim, after, months))
    until = SANDBOX_TODAY - dt.timedelta(days=1 + index * 200)
    since = until - dt.timedelta(days=30 * months)
    marker = f"META_ELT_CRASH_MARKER_{uuid.uuid4().hex}"
    args = [
        str(ROOT / ".venv" / "bin" / "meta-elt"), "backfill", "--tenant", TENANT,
        "--account", ACCOUNT, "--since", str(since), "--until", str(until),
        "--chunk-size", "1", "--concurrency", str(CONCURRENCY),
    ]  # fmt: skip
    log = ROOT / ".meltano/logs/meta-elt" / f"backfill-{TENANT}-{ACCOUNT}-{since}-{until}.log"
    log.unlink(missing_ok=True)
    stack.sandbox.reset_stats()
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**stack.env, marker: "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while len(windows_done(log.read_text() if log.exists() else "")) < after:
        assert proc.poll() is None, "the backfill ended before it could be killed"
        assert time.monotonic() < deadline, "too few windows completed in time"
        time.sleep(0.02)
    total = windows_done(log.read_text())[-1]["windows_total"]
    assert len(_marked(marker)) >= 4, "meta-elt, meltano, the tap and the target run"
    if victim == "tap":
        tap = [p for p, cmd in _tree(proc.pid).items() if "tap-meta-insights" in cmd]
        assert tap, "the tap runs"
        os.kill(tap[0], signal.SIGKILL)
    elif victim == "tree":
        tree = _tree(proc.pid)  # listed first: once killed, orphans are no longer its children
        os.killpg(proc.pid, signal.SIGKILL)  # meta-elt and everything it started
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):  # already gone with the group
                os.kill(pid, signal.SIGKILL)
    else:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=120)
    deadline = time.monotonic() + 20
    while _marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marked(marker) == [], "no process outlives the kill"
    loaded = _windows_loaded(stack, since, until)

    stack.sandbox.reset_stats()
    resumed = subprocess.run(
        [*args, "--resume"], cwd=ROOT, env=stack.env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    redone = stack.sandbox.stats()["jobs_created"]
    # Exactly the windows not loaded at the kill, and at most UNSAVED_STATES more, whatever
    # the machine's load (how far the loader trails the tap does not matter); before, a kill
    # redid every window.
    assert total - loaded <= redone <= total - loaded + UNSAVED_STATES, (redone, total, loaded)
    assert loaded > 0 and redone < total

    truth = {
        (r["ad_id"], r["date_start"]): Decimal(r["spend"])
        for r in stack.sandbox.truth(
            account=ACCOUNT, level="ad", since=str(since), until=str(until)
        )
    }
    rows = stack.query(
        "select object_id, date::text, spend from analytics.meta_insights_levels where "
        "tenant_id = %s and ad_account_id = %s and level = 'ad' and date between %s and %s",
        TENANT, ACCOUNT, since, until,
    )  # fmt: skip
    assert truth and {(o, d): Decimal(s) for o, d, s in rows} == truth
    assert len(rows) == len(truth), "no row twice"
