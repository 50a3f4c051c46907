"""The Dagster code location's own logic, without a daemon: how partitions become meta-elt
commands, how runs get their account tag, what is read from the project's files; and
`dagster definitions validate` on it (here, not in the e2e module, the suite's longest)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess

import dagster as dg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from meta_elt_dagster import automation, coordinator, project, raw, registry

from tests.support import ROOT

T1 = "2c8a4e1f-7b3d-4f6a-9c0e-5d1b8a2f4e63"
T2 = "8e5d3c2b-1a9f-4e7d-b6c5-4f3a2e1d0c98"


def _keys(account: str, *days: str) -> list[str]:
    return [f"{account}|{day}" for day in days]


def test_partitions_become_contiguous_ranges_per_account():
    keys = _keys(f"{T1}:act_1", "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-05")
    keys += _keys(f"{T2}:act_2", "2026-02-28", "2026-03-01")
    assert raw.ranges(reversed(keys)) == [
        (f"{T1}:act_1", dt.date(2026, 1, 1), dt.date(2026, 1, 3)),
        (f"{T1}:act_1", dt.date(2026, 1, 5), dt.date(2026, 1, 5)),
        (f"{T2}:act_2", dt.date(2026, 2, 28), dt.date(2026, 3, 1)),
    ]


def test_backfill_and_sync_commands():
    keys = _keys(f"{T1}:act_1", "2026-01-01", "2026-01-02")
    assert raw.commands(keys, mode="backfill", resume=False, concurrency=2) == [
        ["backfill", "--tenant", T1, "--account", "act_1", "--since", "2026-01-01",
         "--until", "2026-01-02", "--concurrency", "2", "--no-build"]
    ]  # fmt: skip
    assert raw.commands(keys, mode="backfill", resume=True, concurrency=3)[0][-1] == "--resume"
    sync = raw.commands(
        _keys(f"{T2}:act_9", *(f"2026-01-{d:02}" for d in range(1, 30))),
        mode="sync", resume=True, concurrency=2,
    )  # fmt: skip
    assert sync == [
        ["sync", "--tenant", T2, "--account", "act_9", "--lookback-days", "28", "--no-build"]
    ]


def test_a_bad_partition_key_is_one_line_naming_it():
    with pytest.raises(ValueError, match=r"partition 'acme\|act_1' is not <tenant uuid>"):
        registry.parse_account_key("acme|act_1")
    assert registry.parse_account_key(f"{T1}:act_12") == (T1, "act_12")


def test_runs_are_tagged_with_their_account():
    account = f"{T1}:act_1"
    ranged = {
        ASSET_PARTITION_RANGE_START_TAG: f"{account}|2026-01-01",
        ASSET_PARTITION_RANGE_END_TAG: f"{account}|2026-03-31",
    }
    assert coordinator.account_of(ranged) == account
    assert coordinator.account_of({"dagster/partition/account": account}) == account
    assert coordinator.account_of({"dagster/partition": f"{account}|2026-01-01"}) == account
    across = {
        ASSET_PARTITION_RANGE_START_TAG: f"{T1}:act_1|2026-01-01",
        ASSET_PARTITION_RANGE_END_TAG: f"{T1}:act_2|2026-01-01",
    }
    assert coordinator.account_of(across) is None
    run = dg.DagsterRun(job_name="x", tags=ranged)
    assert coordinator.extra_tags(run) == {coordinator.ACCOUNT_TAG: account}
    marts = dg.DagsterRun(job_name="__ASSET_JOB", asset_selection=frozenset({dg.AssetKey("m")}))
    assert coordinator.extra_tags(marts) == {coordinator.MARTS_TAG: "build"}


def test_the_schedule_and_the_build_come_from_the_project_files(monkeypatch):
    monkeypatch.delenv("META_ELT_DAGSTER_CRON", raising=False)
    assert project.daily_cron(ROOT) == "15 5 * * *"
    build = project.scheduled_build(ROOT)
    assert "+meta_insights_daily+" in build.select
    assert build.exclude == "tag:db_enforced resource_type:unit_test tag:staging"
    assert "meta_test_scope" in (build.vars or "")


def test_the_build_passes_on_what_it_builds_not_where_meltano_writes_artifacts(tmp_path):
    """dagster-dbt keeps its own artifacts: --no-write-json is not read; a flag that changes
    what is built and that the code location would drop is refused, naming it."""
    args = ["build", "--no-write-json", "--select", "a+", "--exclude", "tag:x", "--vars", "{v: 1}"]
    build = project._parse_build(args, tmp_path / "t.yml")
    assert (build.select, build.exclude, build.vars) == ("a+", "tag:x", "{v: 1}")
    with pytest.raises(project.ConfigError, match=r"\['--full-refresh'\], not read here"):
        project._parse_build([*args, "--full-refresh"], tmp_path / "t.yml")


def test_sync_request_covers_the_lookback_of_one_account(monkeypatch):
    monkeypatch.setenv("META_ELT_DAGSTER_LOOKBACK_DAYS", "3")
    request = automation.sync_request(f"{T1}:act_1", dt.date(2026, 3, 2), "k")
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == f"{T1}:act_1|2026-02-27"
    assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == f"{T1}:act_1|2026-03-02"
    assert request.tags[raw.MODE_TAG] == "sync"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("META_ELT_DAGSTER_LOOKBACK_DAYS", "four", "is not a whole number"),
        ("META_ELT_DAGSTER_SCHEDULE", "paused", "is not running or stopped"),
        ("META_ELT_DAGSTER_START_DATE", "2026-02-30", "is not a date"),
    ],
)
def test_bad_settings_are_one_line_naming_them(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(project.ConfigError, match=f"{name}=.*{message}"):
        automation.lookback_days()
        automation.schedule_default_status()
        project.first_day()


def test_first_day_is_37_months_back():
    assert project.first_day(dt.date(2026, 11, 30)) == dt.date(2023, 10, 1)


def test_the_marts_are_built_once_after_the_loads_in_flight_have_landed():
    raw_keys = [dg.AssetKey(["meta_ads", t]) for t in ("insights_ad", "accounts")]
    marts_keys = [dg.AssetKey(["meta_insights_daily"]), dg.AssetKey(["meta_insights_levels"])]

    def land(*keys: dg.AssetKey) -> None:
        for key in keys:
            instance.report_runless_asset_event(dg.AssetMaterialization(key))

    def decide(cursor: int) -> tuple[int, str | None]:
        return automation.marts_build_decision(instance, raw_keys, marts_keys, cursor)

    with dg.DagsterInstance.ephemeral() as instance:
        assert decide(0) == (0, "no load since the last build request")
        land(raw_keys[0])
        # A load of another account is still running: wait, keeping the cursor.
        loading = dg.DagsterRun(
            job_name=automation.RAW_JOB, run_id="r1", status=dg.DagsterRunStatus.STARTED
        )
        instance.add_run(loading)
        assert decide(0) == (0, "waiting for 1 load run(s) in flight")
        instance.handle_run_event(
            "r1",
            dg.DagsterEvent(
                event_type_value="PIPELINE_SUCCESS", job_name=automation.RAW_JOB, message="done"
            ),
        )
        land(raw_keys[1])
        cursor, wait = decide(0)
        assert wait is None and cursor > 0  # build now, once
        assert decide(cursor) == (cursor, "no load since the last build request")
        # A build that found the marts newer than the loads (a backfill built them) moves on.
        land(raw_keys[0])
        land(*marts_keys)
        later, wait = decide(cursor)
        assert later > cursor and wait == "the marts are newer than every load"


def test_only_the_reports_insights_are_day_partitions():
    tables = ["accounts", "ads", "adsets", "campaigns", "insights_ad", "insights_adset",
              "insights_campaign", "insights_campaign_age_gender", "insights_windows"]  # fmt: skip
    assets = raw.build_raw_assets(tables, "meta_ads")
    assert {k.path[-1] for k in assets.keys} == {
        "insights_ad", "insights_adset", "insights_campaign", "insights_campaign_age_gender"
    }  # fmt: skip
    assert isinstance(assets.partitions_def, dg.MultiPartitionsDefinition)
    others = raw.unpartitioned_specs(tables, "meta_ads")
    assert {s.key.path[-1] for s in others} == {
        "accounts", "ads", "adsets", "campaigns", "insights_windows"
    }  # fmt: skip
    assert all(s.partitions_def is None for s in others)


def test_definitions_validate(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "dagster"), "definitions", "validate",
         "-m", "meta_elt_dagster.definitions"],
        cwd=tmp_path,  # not the project: the code location finds it by itself
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "All code locations passed validation" in done.stdout + done.stderr
