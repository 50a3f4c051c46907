"""Rollback sync end to end: a re-synced window replaces the window.

Between two syncs the sandbox restates its numbers (POST /__sandbox/restate): one ad loses two
days, another ad is deleted outright, and one day loses every ad of the account. The second sync
re-reads its lookback window; the raw tables keep the rows Meta no longer returns (upserts never
delete), but the marts built from them must equal the sandbox's truth exactly, at every level,
in meta_insights_daily for every attribution window too, after the incremental build of the
sync and after a full refresh. Days outside the re-read window keep what the first sync loaded.

One database of this module's own (named after PGDATABASE, dropped afterwards), one tenant with
one account of four ads, two syncs and one full refresh. The scenario's states (first sync,
resync) are module fixtures: the tests run in any order.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
import yaml
from meta_sandbox.testing import SandboxServer

from meta_elt import postgres
from tests.support import ROOT, meltano

TODAY = dt.date.today()
SANDBOX_TODAY = TODAY - dt.timedelta(days=2)
TENANT = "5d2b8e61-3c4f-4a7e-9b10-7e6f5a4d3c21"
ACCOUNT = "act_400001"
TOKEN = "rollback-token-3e9a"
LEVELS = ("ad", "adset", "campaign")
# The tap plans to the real today; the first sync reads 14 days back, the second re-reads 8
# (from the bookmark, i.e. the real today): so days before RESYNCED_SINCE are read once only.
FIRST_SINCE = SANDBOX_TODAY - dt.timedelta(days=11)
RESYNCED_SINCE = SANDBOX_TODAY - dt.timedelta(days=5)
UNTIL = SANDBOX_TODAY - dt.timedelta(days=1)
AD_DAYS_GONE = (SANDBOX_TODAY - dt.timedelta(days=4), SANDBOX_TODAY - dt.timedelta(days=3))
ACCOUNT_DAY_GONE = SANDBOX_TODAY - dt.timedelta(days=2)


def _world() -> dict:
    return {
        "seed": 31,
        "now": f"{SANDBOX_TODAY}T12:00:00Z",
        "tokens": [{"token": TOKEN, "accounts": [ACCOUNT]}],
        "accounts": [
            {
                "id": ACCOUNT,
                "name": "Rollback account",
                "currency": "EUR",
                "timezone_name": "UTC",
                "history_days": 60,
                "campaigns": 2,
                "adsets_per_campaign": 1,
                "ads_per_adset": 2,
                "capacity": 4,
            }
        ],
    }


@dataclass
class Stack:
    sandbox: SandboxServer
    server: postgres.Server
    env: dict[str, str]

    def meta_elt(self, *args: str) -> None:
        done = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "meta-elt"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    def query(self, sql: str, *params: object) -> list[tuple]:
        with self.server.connect() as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def stack(pg_server: postgres.Server, tmp_path_factory) -> Iterator[Stack]:
    database = f"{pg_server.database}_rollback"
    with pg_server.connect(database="postgres", autocommit=True) as conn:
        conn.execute(f'drop database if exists "{database}" with (force)')  # this module's own
    server = postgres.with_database(pg_server, database)
    registry = tmp_path_factory.mktemp("registry") / "tenants.yml"
    registry.write_text(
        yaml.safe_dump(
            {
                "tenants": [
                    {
                        "id": TENANT,
                        "name": "Rollback tenant",
                        "token_env": "ROLLBACK_TOKEN",
                        "accounts": [ACCOUNT],
                    }
                ]
            }
        )
    )
    dbt_dir = tmp_path_factory.mktemp("dbt")
    with SandboxServer(world=_world(), time_scale=0.001) as sandbox:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "TAP_FACEBOOK_"))},
            **server.libpq_env(),
            "META_ELT_TENANTS": str(registry),
            "ROLLBACK_TOKEN": TOKEN,
            "TAP_FACEBOOK_API_URL": sandbox.base_url,
            "TAP_FACEBOOK_POLL_INTERVAL": "0.05",
            # for the full refresh (meta-elt gives its runs their own)
            "DBT_TARGET_PATH": str(dbt_dir / "target"),
            "DBT_LOG_PATH": str(dbt_dir / "logs"),
        }
        yield Stack(sandbox, server, env)
    if not os.environ.get("META_ELT_E2E_KEEP_DATABASE"):
        with pg_server.connect(database="postgres", autocommit=True) as conn:
            conn.execute(f'drop database if exists "{database}" with (force)')


# ------------------------------------------------------------------ truth and marts as dicts
def _truth(stack: Stack, level: str, since: dt.date, until: dt.date) -> dict[tuple, tuple]:
    """(level, object_id, date) -> (spend, impressions) as the sandbox answers now."""
    rows = stack.sandbox.truth(account=ACCOUNT, level=level, since=str(since), until=str(until))
    return {
        (level, r[f"{level}_id"], r["date_start"]): (Decimal(r["spend"]), int(r["impressions"]))
        for r in rows
    }


def _all_truth(stack: Stack, since: dt.date, until: dt.date) -> dict[tuple, tuple]:
    return {k: v for level in LEVELS for k, v in _truth(stack, level, since, until).items()}


def _levels(stack: Stack, since: dt.date, until: dt.date) -> dict[tuple, tuple]:
    rows = stack.query(
        "select level, object_id, date::text, spend, impressions "
        "from analytics.meta_insights_levels where tenant_id = %s and ad_account_id = %s "
        "and level <> 'account' and date between %s and %s",
        TENANT,
        ACCOUNT,
        since,
        until,
    )
    return {(lv, o, d): (Decimal(s), int(i)) for lv, o, d, s, i in rows}


def _daily(stack: Stack, since: dt.date, until: dt.date) -> dict[str, dict[tuple, tuple]]:
    """attribution_window -> {(level, object_id, date): (spend, impressions)}, no breakdowns."""
    rows = stack.query(
        "select attribution_window, level, object_id, date::text, spend, impressions "
        "from analytics.meta_insights_daily where tenant_id = %s and ad_account_id = %s "
        "and breakdowns = '{}'::jsonb and date between %s and %s",
        TENANT,
        ACCOUNT,
        since,
        until,
    )
    out: dict[str, dict[tuple, tuple]] = {}
    for window, lv, o, d, s, i in rows:
        out.setdefault(window, {})[(lv, o, d)] = (Decimal(s), int(i))
    return out


def _account_days(stack: Stack, since: dt.date, until: dt.date) -> dict[str, tuple]:
    rows = stack.query(
        "select date::text, spend, metrics_source from analytics.meta_insights_levels "
        "where tenant_id = %s and ad_account_id = %s and level = 'account' "
        "and date between %s and %s",
        TENANT,
        ACCOUNT,
        since,
        until,
    )
    return {d: (Decimal(s), m) for d, s, m in rows}


def _assert_marts_equal_truth(stack: Stack, first_truth: dict[tuple, tuple]) -> None:
    """The re-read days equal the sandbox's truth now; earlier days what the first sync read."""
    truth = _all_truth(stack, RESYNCED_SINCE, UNTIL)
    levels = _levels(stack, RESYNCED_SINCE, UNTIL)
    assert set(levels) - set(truth) == set(), "stale rows in meta_insights_levels"
    assert levels == truth
    daily = _daily(stack, RESYNCED_SINCE, UNTIL)
    assert set(daily) == {"default", "1d_view", "7d_click", "28d_click"}
    for window, rows in daily.items():
        assert set(rows) - set(truth) == set(), f"stale rows in meta_insights_daily ({window})"
        assert rows == truth, window
    # An account-day with no ad left (the emptied day; on some dates of this world, a day whose
    # only delivering ads were the shrunk and the deleted one) is a zero-fill row, no other day.
    accounts = _account_days(stack, RESYNCED_SINCE, UNTIL)
    delivered = {k[2] for k in truth if k[0] == "ad"}
    assert str(ACCOUNT_DAY_GONE) not in delivered
    for day, (spend, source) in accounts.items():
        ad_spend = sum(v[0] for k, v in truth.items() if k[0] == "ad" and k[2] == day)
        assert spend == ad_spend, day
        assert (source == "zero_fill") == (day not in delivered), (day, source)
    assert len(accounts) == (UNTIL - RESYNCED_SINCE).days + 1
    # days the second sync did not re-read keep the first sync's rows, at every level
    earlier = dt.date.fromisoformat(min(k[2] for k in first_truth))
    before_resync = RESYNCED_SINCE - dt.timedelta(days=1)
    kept = {k: v for k, v in first_truth.items() if k[2] < str(RESYNCED_SINCE)}
    assert _levels(stack, earlier, before_resync) == kept
    assert _daily(stack, earlier, before_resync)["default"] == kept


@dataclass
class FirstSync:
    truth: dict[tuple, tuple]  # the sandbox's truth after the first sync, every level
    levels: dict[tuple, tuple]  # the marts as the first sync left them
    daily: dict[tuple, tuple]


@dataclass
class Resync:
    shrunk_ad: str
    stale_raw_rows: int  # raw rows of the shrunk ad on the restated days, after the resync
    windows: tuple  # (windows, windows with started_at)


# ------------------------------------------------------------------ the scenario's states
# Each state is a module fixture, so the tests below run in any order (or alone).
@pytest.fixture(scope="module")
def first_sync(stack: Stack) -> FirstSync:
    stack.meta_elt("sync", "--tenant", TENANT, "--lookback-days", "14")
    return FirstSync(
        _all_truth(stack, FIRST_SINCE, UNTIL),
        _levels(stack, FIRST_SINCE, UNTIL),
        _daily(stack, FIRST_SINCE, UNTIL)["default"],
    )


@pytest.fixture(scope="module")
def resync(stack: Stack, first_sync: FirstSync) -> Resync:
    """Meta's numbers shrink (two ad-days, an ad, an account-day restated away), then a sync
    re-reads the last 8 days."""
    first = first_sync.truth
    ads_by_day: dict[str, set[str]] = {}
    for _, ad, day in (k for k in first if k[0] == "ad"):
        ads_by_day.setdefault(day, set()).add(ad)
    ad_days = [str(d) for d in AD_DAYS_GONE]
    shrunk = sorted(set.intersection(*(ads_by_day.get(d, set()) for d in ad_days)))
    assert shrunk, "an ad delivered on both restated days"
    shrunk_ad = shrunk[0]
    deleted = sorted(
        {ad for (lv, ad, day) in first if lv == "ad" and day >= str(RESYNCED_SINCE)} - {shrunk_ad}
    )
    assert deleted, "another ad delivered in the re-read days"
    assert ads_by_day.get(str(ACCOUNT_DAY_GONE)), "the account delivered on the emptied day"

    stack.sandbox.restate(ad=shrunk_ad, since=ad_days[0], until=ad_days[-1])
    stack.sandbox.restate(ad=deleted[0])
    stack.sandbox.restate(account=ACCOUNT, since=str(ACCOUNT_DAY_GONE), until=str(ACCOUNT_DAY_GONE))
    assert _all_truth(stack, RESYNCED_SINCE, UNTIL) != {
        k: v for k, v in first.items() if k[2] >= str(RESYNCED_SINCE)
    }, "the world shrank"

    stack.meta_elt("sync", "--tenant", TENANT, "--lookback-days", "8")
    stale = stack.query(
        "select count(*) from raw_meta.insights_ad where tenant_id = %s and ad_id = %s "
        "and date = any(%s)",
        TENANT,
        shrunk_ad,
        list(AD_DAYS_GONE),
    )[0][0]
    windows = stack.query(
        "select count(*), count(started_at) from raw_meta.insights_windows where tenant_id = %s",
        TENANT,
    )[0]
    return Resync(shrunk_ad, stale, tuple(windows))


# ------------------------------------------------------------------ the tests
def test_first_sync_lands_the_truth(first_sync: FirstSync):
    assert first_sync.truth
    assert first_sync.levels == first_sync.truth
    assert first_sync.daily == first_sync.truth


def test_resync_after_the_numbers_shrank_drops_what_meta_no_longer_returns(
    stack: Stack, first_sync: FirstSync, resync: Resync
):
    # the raw table still holds the rows Meta no longer returns: staging drops them
    assert resync.stale_raw_rows == 2
    total, started = resync.windows
    assert total > 0 and total == started, "every window says when it started"
    _assert_marts_equal_truth(stack, first_sync.truth)


def test_full_refresh_gives_the_same_marts(stack: Stack, first_sync: FirstSync, resync: Resync):
    before = stack.query("select count(*) from analytics.meta_insights_daily")[0][0]
    done = meltano(
        "invoke", "dbt-postgres:run", "--full-refresh",
        "--select", "meta_insights_daily", "meta_insights_levels",
        server=stack.server,
        env={k: v for k, v in stack.env.items() if k.startswith(("DBT_", "META_RAW"))},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert stack.query("select count(*) from analytics.meta_insights_daily")[0][0] == before
    _assert_marts_equal_truth(stack, first_sync.truth)
