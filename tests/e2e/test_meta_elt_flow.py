"""End to end: `meta-elt` backfill / sync / verify on the Graph API sandbox and a real PostgreSQL.

One database per session (created and dropped here), one sandbox world of 2 tenants x 2 accounts.
The `backfilled` fixture loads every account first; each test starts from there and leaves the
data true to the sandbox, so the tests run in any order (`pytest --reverse` runs them backwards).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from meta_sandbox.testing import SandboxServer

from meta_elt import postgres
from tests.support import ROOT

TODAY = dt.date.today()
SANDBOX_TODAY = TODAY - dt.timedelta(days=2)
SINCE = SANDBOX_TODAY - dt.timedelta(days=59)
UNTIL = SANDBOX_TODAY - dt.timedelta(days=1)
TENANT_A = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
TENANT_B = "6fa459ea-ee8a-4ca4-894e-db77e160355e"
ACCOUNTS = {TENANT_A: ["act_200001", "act_200002"], TENANT_B: ["act_200003", "act_200004"]}
TOKENS = {TENANT_A: "e2e-token-a", TENANT_B: "e2e-token-b"}
CONVERSION_TYPES = {"purchase", "lead"}  # transform/dbt_project.yml meta_conversion_action_types


def _world() -> dict:
    zones = ["Europe/Stockholm", "America/New_York", "Asia/Tokyo", "UTC"]
    currencies = ["SEK", "USD", "JPY", "EUR"]
    accounts = [a for tenant in ACCOUNTS.values() for a in tenant]
    return {
        "seed": 11,
        "now": f"{SANDBOX_TODAY}T12:00:00Z",
        "tokens": [{"token": TOKENS[t], "accounts": ACCOUNTS[t]} for t in ACCOUNTS],
        "accounts": [
            {
                "id": account,
                "name": f"E2E account {i}",
                "currency": currencies[i],
                "timezone_name": zones[i],
                "history_days": 150,
                "campaigns": 2,
                "adsets_per_campaign": 2,
                "ads_per_adset": 2,
                "capacity": 4,
            }
            for i, account in enumerate(accounts)
        ],
    }


@dataclass
class Stack:
    sandbox: SandboxServer
    server: postgres.Server
    env: dict[str, str]

    def meta_elt(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "meta-elt"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if check:
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    def query(self, sql: str, *params: object) -> list[tuple]:
        with self.server.connect() as conn:
            return conn.execute(sql, params).fetchall()

    def query_commit(self, sql: str, *params: object) -> None:
        with self.server.connect() as conn:
            conn.execute(sql, params)
            conn.commit()


@pytest.fixture(scope="module")
def stack(pg_server: postgres.Server, tmp_path_factory) -> Iterator[Stack]:
    database = f"meta_elt_e2e_{uuid.uuid4().hex[:8]}"  # this module's own, dropped afterwards
    server = postgres.with_database(pg_server, database)
    registry = tmp_path_factory.mktemp("registry") / "tenants.yml"
    registry.write_text(
        yaml.safe_dump(
            {
                "tenants": [
                    {
                        "id": tenant,
                        "name": f"Tenant {letter}",
                        "token_env": f"E2E_TOKEN_{letter}",
                        "accounts": ACCOUNTS[tenant],
                    }
                    for tenant, letter in ((TENANT_A, "A"), (TENANT_B, "B"))
                ]
            }
        )
    )
    with SandboxServer(world=_world(), time_scale=0.001) as sandbox:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "TAP_FACEBOOK_"))},
            **server.libpq_env(),
            "META_ELT_TENANTS": str(registry),
            "E2E_TOKEN_A": TOKENS[TENANT_A],
            "E2E_TOKEN_B": TOKENS[TENANT_B],
            "TAP_FACEBOOK_API_URL": sandbox.base_url,
            "TAP_FACEBOOK_POLL_INTERVAL": "0.05",
        }
        yield Stack(sandbox, server, env)
    if not os.environ.get("META_ELT_E2E_KEEP_DATABASE"):  # keep it to look into a failure
        with pg_server.connect(database="postgres", autocommit=True) as conn:
            conn.execute(f"drop database if exists {database} with (force)")


def _truth(stack: Stack, account: str, since: dt.date, until: dt.date) -> dict[tuple, tuple]:
    """(ad_id, date) → (spend, impressions, clicks, conversions) from the sandbox's truth."""
    rows = stack.sandbox.truth(account=account, level="ad", since=str(since), until=str(until))
    truth = {}
    for row in rows:
        conversions = sum(
            Decimal(str(a["value"]))
            for a in row.get("actions") or []
            if a["action_type"] in CONVERSION_TYPES
        )
        truth[(row["ad_id"], row["date_start"])] = (
            Decimal(row["spend"]),
            int(row["impressions"]),
            int(row["clicks"]),
            conversions,
        )
    return truth


def _marts(stack: Stack, account: str, since: dt.date, until: dt.date) -> dict[tuple, tuple]:
    rows = stack.query(
        """
        select object_id, date::text, spend, impressions, clicks, conversions
        from analytics.meta_insights_levels
        where level = 'ad' and ad_account_id = %s and date between %s and %s
        """,
        account,
        since,
        until,
    )
    return {(o, d): (Decimal(s), int(i), int(c), Decimal(v or 0)) for o, d, s, i, c, v in rows}


def _assert_marts_equal_truth(stack: Stack, account: str, since: dt.date, until: dt.date):
    truth = _truth(stack, account, since, until)
    marts = _marts(stack, account, since, until)
    assert truth, "the sandbox delivered in this range"
    assert marts.keys() == truth.keys()
    differing = [k for k in truth if marts[k] != truth[k]]
    assert not differing, f"{len(differing)} rows differ, e.g. {differing[:3]}"


def _row_counts(stack: Stack) -> tuple:
    return tuple(
        stack.query(f"select count(*) from {table}")[0][0]
        for table in (
            "raw_meta.insights_ad",
            "raw_meta.insights_windows",
            "analytics.meta_insights_levels",
            "analytics.meta_insights_daily",
        )
    )


@pytest.fixture(scope="module")
def backfilled(stack: Stack) -> list[subprocess.CompletedProcess[str]]:
    """Every account backfilled over [SINCE, UNTIL]: the state every other test starts from,
    whichever runs first (the tests of this module do not depend on their order). The marts are
    built once, by the last backfill, from all four accounts' loads (--no-build before it)."""
    runs = []
    pairs = [(tenant, account) for tenant, accounts in ACCOUNTS.items() for account in accounts]
    for index, (tenant, account) in enumerate(pairs):
        build = [] if index == len(pairs) - 1 else ["--no-build"]
        done = stack.meta_elt(
            "backfill", "--tenant", tenant, "--account", account.removeprefix("act_"),
            "--since", str(SINCE), "--until", str(UNTIL), "--chunk-size", "1", *build,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(done)
    return runs


def test_backfill_two_tenants_lands_the_truth(stack: Stack, backfilled):
    for done in backfilled:
        assert 'schemaMode: "extended"' in done.stderr
    for done in backfilled[:-1]:
        assert "marts not built (--no-build)" in done.stderr
    built = backfilled[-1].stderr
    assert "ad " in built and str(SINCE) in built  # the summary table, from the marts
    for accounts in ACCOUNTS.values():
        for account in accounts:
            _assert_marts_equal_truth(stack, account, SINCE, UNTIL)
    verify = stack.meta_elt("verify", "--tenant", TENANT_A)
    assert verify.returncode == 0, verify.stderr
    assert "every synced day is present" in verify.stderr
    for value in ("mixed", "7d_click", "{}"):
        assert value in verify.stderr


def test_dbt_parses_the_project_in_full_once_per_command_not_at_every_switch(
    stack: Stack, backfilled
):
    """Builds (the scheduled build's vars) and `verify`'s coverage runs (no vars) take turns:
    each keeps its own saved manifest, so none is parsed again in full because the other ran."""
    stack.meta_elt("verify", "--tenant", TENANT_A, check=True)
    # the marts' second build at least (the fixture's was the first), between two verify runs
    stack.meta_elt(
        "backfill", "--tenant", TENANT_A, "--account", ACCOUNTS[TENANT_A][0],
        "--since", str(UNTIL), "--until", str(UNTIL), check=True,
    )  # fmt: skip
    stack.meta_elt("verify", "--tenant", TENANT_A, check=True)
    logs = sorted(
        (ROOT / ".meltano" / "workers").glob(f"dbt-{stack.server.database}*/dbt/logs/dbt.log")
    )
    assert len(logs) == 2, logs  # the build's and the coverage run's
    for log in logs:
        text = log.read_text()
        assert "Partial parsing enabled" in text, log
        assert "config vars, config profile, or config target have changed" not in text, log


def test_bad_inputs_exit_2_and_leave_rows_untouched(stack: Stack, backfilled):
    before = _row_counts(stack)
    bad = [
        ["--tenant", "not-a-uuid"],
        ["--account", "act_abc"],
        ["--since", "2025-13-01"],
        ["--until", str(TODAY + dt.timedelta(days=3))],
        ["--chunk-size", "0"],
        ["--concurrency", "100"],
    ]
    for override in bad:
        args = {
            "--tenant": TENANT_A,
            "--account": ACCOUNTS[TENANT_A][0],
            "--since": str(SINCE),
            "--until": str(UNTIL),
        }
        args.update(dict(zip(override[::2], override[1::2], strict=True)))
        done = stack.meta_elt("backfill", *[x for pair in args.items() for x in pair])
        assert done.returncode == 2, (override, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert override[0] in done.stderr
    assert _row_counts(stack) == before


def test_daily_sync_picks_up_late_attribution(stack: Stack, backfilled):
    recent_since = UNTIL - dt.timedelta(days=10)
    before = {a: _marts(stack, a, recent_since, UNTIL) for a in ACCOUNTS[TENANT_A]}
    stack.sandbox.advance_clock(days=1)
    new_today = SANDBOX_TODAY + dt.timedelta(days=1)
    done = stack.meta_elt("sync", "--all", "--parallel", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    changed = 0
    for tenant_accounts in ACCOUNTS.values():
        for account in tenant_accounts:
            _assert_marts_equal_truth(stack, account, SINCE, new_today)
    for account in ACCOUNTS[TENANT_A]:
        after = _marts(stack, account, recent_since, UNTIL)
        changed += sum(1 for k, v in after.items() if before[account].get(k) != v)
    assert changed > 0, "late attribution moved some recent conversions and the sync took them"
    duplicates = stack.query(
        """
        select count(*) from (
            select 1 from analytics.meta_insights_levels
            group by tenant_id, ad_account_id, level, object_id, date having count(*) > 1
        ) d
        """
    )[0][0]
    assert duplicates == 0


def test_backfill_of_an_older_range_lands_in_the_marts(stack: Stack, backfilled):
    account = ACCOUNTS[TENANT_A][1]
    older_since, older_until = SINCE - dt.timedelta(days=40), SINCE - dt.timedelta(days=1)
    done = stack.meta_elt(
        "backfill", "--tenant", TENANT_A, "--account", account,
        "--since", str(older_since), "--until", str(older_until),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_marts_equal_truth(stack, account, older_since, older_until)
    verify = stack.meta_elt("verify", "--tenant", TENANT_A, "--account", account)
    assert verify.returncode == 0, verify.stderr


def test_sync_all_with_a_revoked_token_fails_only_that_tenant(stack: Stack, backfilled):
    stack.sandbox.add_fault({"kind": "expire_token", "token": TOKENS[TENANT_B]})
    try:
        done = stack.meta_elt("sync", "--all")
    finally:
        stack.sandbox.clear_faults()
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    row_a = next(line for line in lines if line.startswith(TENANT_A))
    row_b = next(line for line in lines if line.startswith(TENANT_B))
    assert " ok " in row_a
    assert "FAILED" in row_b and "token" in row_b.lower()
    assert TOKENS[TENANT_B] not in done.stderr + done.stdout
    assert "failure(s) in 2 tenant(s): Tenant B:" in done.stderr


def test_no_token_in_logs(stack: Stack, backfilled):
    logs = list((ROOT / ".meltano" / "logs" / "meta-elt").glob("*.log"))
    assert logs, "the backfills wrote their logs"
    for path in logs:
        text = Path(path).read_text()
        for token in TOKENS.values():
            assert token not in text, path


def test_legacy_schema_is_logged_and_the_missing_column_added(stack: Stack, backfilled):
    stack.query_commit("alter table analytics.meta_insights_daily drop column link_clicks")
    # Rows loaded long before this run: an incremental build would not rewrite them, and the
    # column dbt appends would stay NULL in them (whatever this module's duration).
    for table in ("insights_ad", "insights_adset", "insights_campaign"):
        stack.query_commit(
            f"update raw_meta.{table} set _sdc_batched_at = _sdc_batched_at - interval '1 hour'"
        )
    account = ACCOUNTS[TENANT_A][0]
    done = stack.meta_elt(
        "backfill", "--tenant", TENANT_A, "--account", account,
        "--since", str(UNTIL - dt.timedelta(days=2)), "--until", str(UNTIL),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'schemaMode: "legacy"' in done.stderr
    assert "meta_insights_daily: link_clicks" in done.stderr
    columns = stack.query(
        "select column_name from information_schema.columns "
        "where table_schema = 'analytics' and table_name = 'meta_insights_daily'"
    )
    assert ("link_clicks",) in columns, "dbt added the column back (on_schema_change)"
    again = stack.meta_elt("verify", "--tenant", TENANT_A, "--account", account)
    assert again.returncode == 0, again.stderr


def test_verify_fails_when_a_synced_day_is_missing(stack: Stack, backfilled):
    account = ACCOUNTS[TENANT_A][0]
    day = "ad_account_id = %s and date = %s"
    stack.query_commit(
        f"create table public.missing_day as select * from analytics.meta_insights_levels "
        f"where {day}",
        account,
        UNTIL,
    )
    stack.query_commit(f"delete from analytics.meta_insights_levels where {day}", account, UNTIL)
    try:
        done = stack.meta_elt("verify", "--tenant", TENANT_A, "--account", account)
    finally:  # the day back, for the tests that run after this one
        stack.query_commit("insert into analytics.meta_insights_levels table public.missing_day")
        stack.query_commit("drop table public.missing_day")
    assert done.returncode == 1
    assert "synced day(s) missing from the marts" in done.stderr
    assert f"{account} account: {UNTIL}" in done.stderr, "the missing day is named"
