"""The README's plain Meltano and dbt workflow, from a clean environment with only what the README
names (PG*, the TAP_FACEBOOK_* settings), against the sandbox, on a database of its own:

- `meta-elt migrate` once, then `meltano run daily` lands the truth in the marts;
- `meltano run --full-refresh backfill` lands an older range under its own state id and leaves the
  daily bookmark exactly as it was;
- `meltano state list/clear`, `meltano schedule list`, `meltano invoke dbt-postgres:test` work;
- Meltano and meta-elt read the same state (one system database) and the same `.env` file.
"""

from __future__ import annotations

import datetime as dt
import re
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
UNTIL = SANDBOX_TODAY - dt.timedelta(days=1)
DAILY_START = SANDBOX_TODAY - dt.timedelta(days=20)
BACKFILL = (SANDBOX_TODAY - dt.timedelta(days=75), SANDBOX_TODAY - dt.timedelta(days=50))
ACCOUNT = "act_700001"
TOKEN = "plain-meltano-token"
TENANT = "5b1f7c2e-8d4a-4f3b-9e6c-0a1b2c3d4e5f"
#: The tenant of plain `meltano run`s: the extractor's default tenant_id, the nil UUID.
PLAIN_TENANT = "00000000-0000-0000-0000-000000000000"
DAILY_STATE = "dev:tap-facebook-to-target-postgres"
BACKFILL_STATE = "dev:tap-facebook--backfill-to-target-postgres"


@dataclass
class Plain:
    sandbox: SandboxServer
    server: postgres.Server
    env: dict[str, str]

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        program = args[0] if args[0].startswith("/") else str(ROOT / ".venv" / "bin" / args[0])
        return subprocess.run(
            [program, *args[1:]],
            cwd=ROOT,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            check=False,
        )

    def ok(self, *args: str, **extra: str) -> str:
        done = self.run(*args, **extra)
        assert done.returncode == 0, f"{' '.join(args)}:\n{done.stderr[-3000:]}"
        return done.stdout + done.stderr

    def state(self, state_id: str) -> str:
        done = self.run("meltano", "state", "get", state_id)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.strip()

    def query(self, sql: str, *params: object) -> list[tuple]:
        with self.server.connect() as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def plain(pg_server: postgres.Server) -> Iterator[Plain]:
    database = f"meta_elt_plain_{uuid.uuid4().hex[:8]}"
    server = postgres.with_database(pg_server, database)
    world = {
        "seed": 71,
        "now": f"{SANDBOX_TODAY}T12:00:00Z",
        "tokens": [{"token": TOKEN, "accounts": [ACCOUNT]}],
        "accounts": [
            {"id": ACCOUNT, "name": "Plain", "currency": "EUR", "timezone_name": "UTC",
             "history_days": 120, "campaigns": 1, "adsets_per_campaign": 1, "ads_per_adset": 2,
             "capacity": 4}
        ],
    }  # fmt: skip
    with SandboxServer(world=world, time_scale=0.001) as sandbox:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(Path.home()),
            **server.libpq_env(),
            "TAP_FACEBOOK_ACCESS_TOKEN": TOKEN,
            "TAP_FACEBOOK_ACCOUNT_IDS": ACCOUNT,
            "TAP_FACEBOOK_START_DATE": str(DAILY_START),
            "TAP_FACEBOOK_API_URL": sandbox.base_url,
            "TAP_FACEBOOK_POLL_INTERVAL": "0.2",
        }
        yield Plain(sandbox, server, env)
    with pg_server.connect(database="postgres", autocommit=True) as conn:
        conn.execute(f"drop database if exists {database} with (force)")


def _assert_marts_equal_truth(plain: Plain, since: dt.date, until: dt.date) -> None:
    truth = {
        (r["ad_id"], r["date_start"]): Decimal(r["spend"])
        for r in plain.sandbox.truth(
            account=ACCOUNT, level="ad", since=str(since), until=str(until)
        )
    }
    rows = plain.query(
        "select object_id, date::text, spend from analytics.meta_insights_levels "
        "where tenant_id = %s and ad_account_id = %s and level = 'ad' "
        "and date between %s and %s",
        PLAIN_TENANT,  # meta-elt's sync (another test) keeps its tenant's copy of the account
        ACCOUNT,
        since,
        until,
    )
    assert truth, "the sandbox delivered in the range"
    assert {(o, d): Decimal(s) for o, d, s in rows} == truth
    assert len(rows) == len(truth), "no row twice"


@pytest.fixture(scope="module")
def daily_loaded(plain: Plain) -> Plain:
    """The database migrated and `meltano run daily` done: what the tests start from, whichever
    runs first (they do not depend on their order)."""
    plain.ok("meta-elt", "migrate")  # once per database: schemas and Meltano's system database
    plain.ok("meltano", "run", "daily")
    return plain


def test_daily_then_backfill_with_plain_meltano(daily_loaded: Plain):
    plain = daily_loaded
    _assert_marts_equal_truth(plain, DAILY_START, UNTIL)
    assert DAILY_STATE in plain.ok("meltano", "state", "list")
    daily_state = plain.state(DAILY_STATE)
    assert ACCOUNT in daily_state

    since, until = BACKFILL
    plain.ok(
        "meltano", "run", "--full-refresh", "backfill",
        TAP_FACEBOOK_START_DATE=str(since), TAP_FACEBOOK_END_DATE=str(until),
    )  # fmt: skip
    _assert_marts_equal_truth(plain, since, until)
    _assert_marts_equal_truth(plain, DAILY_START, UNTIL)
    assert plain.state(DAILY_STATE) == daily_state, "the backfill left the daily bookmark alone"
    listed = plain.ok("meltano", "state", "list")
    assert DAILY_STATE in listed and BACKFILL_STATE in listed

    plain.ok("meltano", "invoke", "dbt-postgres:test")
    assert "daily-meta-insights" in plain.ok("meltano", "schedule", "list")

    plain.ok("meltano", "state", "clear", "--force", BACKFILL_STATE)
    listed = plain.ok("meltano", "state", "list")
    assert BACKFILL_STATE not in listed and DAILY_STATE in listed


def test_meta_elt_and_meltano_share_state_and_env_file(plain: Plain, tmp_path: Path):
    """meta-elt's runs are in the state plain Meltano lists, and both read the same env file
    (PG* and the token are only there)."""
    env_file = tmp_path / "project.env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in plain.server.libpq_env().items())
        + f"PLAIN_TOKEN={TOKEN}\n"
    )
    registry = tmp_path / "tenants.yml"
    registry.write_text(
        yaml.safe_dump(
            {"tenants": [{"id": TENANT, "name": "Plain", "token_env": "PLAIN_TOKEN",
                          "accounts": [ACCOUNT]}]}
        )
    )  # fmt: skip
    bare = {k: v for k, v in plain.env.items() if not k.startswith(("PG", "TAP_FACEBOOK_ACCESS"))}
    meta_elt = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "meta-elt"), "--env-file", str(env_file), "sync",
         "--tenant", TENANT, "--lookback-days", "3"],
        cwd=ROOT, env={**bare, "META_ELT_TENANTS": str(registry)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert meta_elt.returncode == 0, meta_elt.stderr[-3000:]
    listed = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "meltano"), "--env-file", str(env_file), "state", "list"],
        cwd=ROOT, env=bare, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert f"{DAILY_STATE}:sync-{TENANT}" in listed.stdout + listed.stderr


def test_an_account_that_stopped_syncing_fails_the_tests_loudly(daily_loaded: Plain):
    """Freshness per tenant and account, in the scheduled build's tests."""
    plain = daily_loaded
    test = "assert_every_account_synced_recently"
    stale_since = "now() - interval '3 days'"
    plain.ok("meltano", "invoke", "dbt-postgres:test", "--select", test)
    with plain.server.connect() as conn:
        conn.execute("create table public.windows_loaded as table raw_meta.insights_windows")
        conn.execute(
            f"update raw_meta.insights_windows set _sdc_batched_at = {stale_since} "
            "where account_id in (%s, %s)",
            (ACCOUNT, ACCOUNT.removeprefix("act_")),
        )
    try:
        _assert_stale_fails_and_retired_passes(plain, test)
    finally:  # the load times back, for the tests that run after this one
        with plain.server.connect() as conn:
            conn.execute(
                "update raw_meta.insights_windows as w set _sdc_batched_at = b._sdc_batched_at "
                "from public.windows_loaded as b where (w.tenant_id, w.account_id, "
                "w.report_name, w.date_start, w.date_stop) = (b.tenant_id, b.account_id, "
                "b.report_name, b.date_start, b.date_stop)"
            )
            conn.execute("drop table public.windows_loaded")


def _assert_stale_fails_and_retired_passes(plain: Plain, test: str) -> None:
    stale = plain.run("meltano", "invoke", "dbt-postgres:test", "--select", test)
    assert stale.returncode != 0
    assert re.search(rf"FAIL \d+ {test}", stale.stderr + stale.stdout), stale.stderr[-2000:]
    retired = f"{{meta_retired_accounts: [{ACCOUNT}]}}"
    plain.ok("meltano", "invoke", "dbt-postgres:test", "--select", test, "--vars", retired)
