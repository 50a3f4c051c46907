"""meta-elt validates every input before touching anything: exit 2 and one line naming it."""

from __future__ import annotations

import datetime as dt
from argparse import Namespace

import pytest
import yaml
from tap_meta_insights import dates as tap_dates

from meta_elt import dates, inputs, tenants
from meta_elt.commands import parse_backfill
from tests.support import ROOT, run_cli

TENANT = "6a0f5c1e-2b7d-4c3a-9e1f-0d4b8a7c6e21"
TODAY = dt.date.today()


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--tenant", "acme"], "--tenant"),
        (["--account", "act_12x"], "--account"),
        (["--since", "2025-02-30"], "--since"),
        (["--until", "yesterday"], "--until"),
        (["--since", "2025-06-02", "--until", "2025-06-01"], "--since"),
        (["--until", (TODAY + dt.timedelta(days=3)).isoformat()], "--until"),  # margin: midnight
        (["--since", (TODAY - dt.timedelta(days=38 * 31)).isoformat()], "--since"),
        (["--chunk-size", "0"], "--chunk-size"),
        (["--chunk-size", "two"], "--chunk-size"),
        (["--concurrency", "-1"], "--concurrency"),
        (["--concurrency", "64"], "--concurrency"),
    ],
)
def test_backfill_bad_input_exits_2_with_one_line(args: list[str], names: str):
    good = {
        "--tenant": TENANT,
        "--account": "act_100001",
        "--since": (TODAY - dt.timedelta(days=30)).isoformat(),
        "--until": (TODAY - dt.timedelta(days=1)).isoformat(),
    }
    merged = dict(good)
    merged.update(dict(zip(args[::2], args[1::2], strict=True)))
    argv = [item for pair in merged.items() for item in pair]
    done = run_cli("backfill", *argv)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"meta-elt: error: {names}:"), lines[0]


def test_sync_needs_a_tenant_or_all():
    done = run_cli("sync", "--tenant", "not-a-uuid")
    assert done.returncode == 2
    assert "--tenant" in done.stderr and "UUID" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--tenant", TENANT, "--tenant", "not-a-uuid"],
        ["--tenant", TENANT, "--tenant", "1b4e28ba-2fa1-41d2-883f-0016d3cca427", "--account", "1"],
        ["--all", "--account", "act_100001"],
    ],
)
def test_verify_of_several_tenants_checks_each_input(args: list[str]):
    """Several tenants (or --all) are verified together; --account belongs to one --tenant."""
    done = run_cli("verify", *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "--tenant" in lines[0] or "--account" in lines[0], lines[0]


def test_unknown_tenant_is_named(tmp_path):
    done = run_cli(
        "backfill",
        "--tenant",
        "11111111-2222-3333-4444-555555555555",
        "--account",
        "1",
        "--since",
        (TODAY - dt.timedelta(days=3)).isoformat(),
        "--until",
        (TODAY - dt.timedelta(days=1)).isoformat(),
    )
    assert done.returncode == 2
    assert "11111111-2222-3333-4444-555555555555 is not in the tenants registry" in done.stderr


def test_account_ids_normalise_to_act_form():
    assert inputs.account_id("123") == "act_123"
    assert inputs.account_id("act_123") == "act_123"
    assert inputs.account_id(" act_0042 ") == "act_0042"


def test_since_at_the_horizon_is_accepted_and_a_day_before_is_not():
    floor = dates.earliest_allowed(TODAY)
    assert inputs.date_range(str(floor), str(TODAY), TODAY)[0] == floor
    with pytest.raises(inputs.BadInput, match="37-month"):
        inputs.date_range(str(floor - dt.timedelta(days=1)), str(TODAY), TODAY)


def test_registry_errors_name_the_file_and_entry(tmp_path):
    path = tmp_path / "tenants.yml"
    path.write_text("tenants:\n- id: 6a0f5c1e-2b7d-4c3a-9e1f-0d4b8a7c6e21\n  token_env: lower\n")
    with pytest.raises(tenants.RegistryError, match=r"tenant #1: token_env 'lower'"):
        tenants.load(path, ROOT)
    path.write_text(
        "tenants:\n- id: 6a0f5c1e-2b7d-4c3a-9e1f-0d4b8a7c6e21\n  token_env: T\n  accounts: [x1]\n"
    )
    with pytest.raises(tenants.RegistryError, match=r"accounts: 'x1' is not a Meta ad account"):
        tenants.load(path, ROOT)


def test_the_cli_and_the_tap_agree_on_metas_horizon():
    """Two programs, two copies of Meta's 37-month rule (nothing is imported across them)."""
    assert dates.MAX_MONTHS_BACK == tap_dates.MAX_MONTHS_BACK
    for today in (dt.date(2026, 3, 31), dt.date(2024, 2, 29), dt.date(2025, 12, 1), TODAY):
        assert dates.earliest_allowed(today) == tap_dates.earliest_allowed(today), today
        for months in (-37, -13, -1, 1, 11):
            assert dates.add_months(today, months) == tap_dates.add_months(today, months)


def test_the_shipped_registry_matches_the_demo_world():
    """`make demo` gives each tenant the demo token of its first account (demo.py): every
    account of the shipped registry must exist in orchestrate/demo/world.yml under that token."""
    registry = tenants.load(ROOT / "orchestrate" / "tenants.yml", ROOT)
    world = yaml.safe_load((ROOT / "orchestrate" / "demo" / "world.yml").read_text())
    token_of = {account: t["token"] for t in world["tokens"] for account in t["accounts"]}
    assert len(registry) == 2
    for tenant in registry.values():
        tokens = {token_of.get(account) for account in tenant.accounts}
        assert len(tokens) == 1 and None not in tokens, (tenant.name, tokens)


@pytest.mark.parametrize(("given", "expected"), [(None, None), ("3", 3)])
def test_backfill_concurrency_is_a_ceiling_left_to_the_tap_unless_given(given, expected):
    # Unset, the tap's max_concurrent_jobs applies (the registry's, the environment's or the
    # tap's default ceiling): meta-elt passes none.
    args = Namespace(
        tenant=TENANT,
        account="act_100001",
        since=(TODAY - dt.timedelta(days=30)).isoformat(),
        until=(TODAY - dt.timedelta(days=1)).isoformat(),
        chunk_size="1",
        concurrency=given,
        resume=False,
        force=False,
    )
    assert parse_backfill(args).concurrency == expected
