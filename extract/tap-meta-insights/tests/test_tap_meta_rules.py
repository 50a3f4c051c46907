"""Meta's rules the tap follows, end to end against the sandbox: Job Skipped, code 2601
(transient or not) on results, and reach with breakdowns limited to 13 months."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from facebook_business.adobjects.adsinsights import AdsInsights
from meta_sandbox.insights import is_reach_related as sandbox_reach_related
from meta_sandbox.testing import SandboxServer
from tap_helpers import ACCOUNT, TOKEN, assert_equals_truth, month_back
from tap_meta_insights.dates import earliest_allowed
from tap_meta_insights.errors import ErrorKind, GraphError, classify
from tap_meta_insights.planning import is_reach_related, reach_cutoff

README = Path(__file__).resolve().parents[3] / "README.md"
AD_REPORT = {"name": "ad", "level": "ad"}


def _jobs_created(sb: SandboxServer) -> int:
    return int(sb.stats()["jobs_created"])


def test_job_skipped_is_run_again_and_rows_equal_truth(sb, base_config, run_tap) -> None:
    since, until = month_back(1)
    sb.add_fault({"kind": "skip_jobs", "account": ACCOUNT, "count": 1})
    run = run_tap(
        {
            **base_config,
            "reports": [AD_REPORT],
            "start_date": since.isoformat(),
            "end_date": until.isoformat(),
        }
    )
    assert run.returncode == 0, run.stderr
    assert "Job Skipped" in run.stderr
    assert_equals_truth(sb, run.of("insights_ad"), level="ad", since=since, until=until)
    assert _jobs_created(sb) == 3  # the skipped month, then its two halves


def test_transient_2601_on_results_is_retried_without_a_new_job(sb, base_config, run_tap) -> None:
    since, until = month_back(1)
    sb.add_fault({"kind": "early_fetch", "account": ACCOUNT, "count": 2, "transient": True})
    run = run_tap(
        {
            **base_config,
            "reports": [AD_REPORT],
            "start_date": since.isoformat(),
            "end_date": until.isoformat(),
        }
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("Transient error while reading results") == 2
    assert _jobs_created(sb) == 1
    assert_equals_truth(sb, run.of("insights_ad"), level="ad", since=since, until=until)


def test_non_transient_2601_runs_the_job_again(sb, base_config, run_tap) -> None:
    since, until = month_back(1)
    sb.add_fault({"kind": "early_fetch", "account": ACCOUNT, "count": 1, "transient": False})
    config = {
        **base_config,
        "reports": [AD_REPORT],
        "start_date": since.isoformat(),
        "end_date": until.isoformat(),
        "page_size": 25,
    }
    run = run_tap(config)
    assert run.returncode == 0, run.stderr
    assert "Transient error" not in run.stderr  # not retried as transient
    assert "running the job again" in run.stderr
    assert _jobs_created(sb) == 2
    assert_equals_truth(sb, run.of("insights_ad"), level="ad", since=since, until=until)


def test_non_transient_2601_every_time_fails_with_one_line(sb, base_config, run_tap) -> None:
    since, until = month_back(1)
    sb.add_fault({"kind": "early_fetch", "account": ACCOUNT, "count": 100, "transient": False})
    run = run_tap(
        {
            **base_config,
            "reports": [AD_REPORT],
            "start_date": since.isoformat(),
            "end_date": until.isoformat(),
        }
    )
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "lost the results of report run" in last and "retry the run later" in last
    assert "Transient error" not in run.stderr
    assert _jobs_created(sb) == 3  # the first run and two reruns


def test_tap_and_sandbox_agree_on_reach_related_fields() -> None:
    names = [v for k, v in vars(AdsInsights.Field).items() if not k.startswith("_")]
    assert {f for f in names if is_reach_related(f)} == {
        f for f in names if sandbox_reach_related(f)
    }
    assert {"reach", "frequency"} <= {f for f in names if is_reach_related(f)}


def readme_breakdown_recipe() -> dict:
    """The breakdown report of README.md's recipe, exactly as written there."""
    text = README.read_text(encoding="utf-8")
    found = re.search(r'`(\{"name": "ad_by_age_gender".*?\})`', text, re.DOTALL)
    assert found, "README.md no longer has the ad_by_age_gender recipe"
    return json.loads(found.group(1))


def test_readme_breakdown_recipe_backfills_37_months(run_tap) -> None:
    report = readme_breakdown_recipe()
    world = {
        "seed": 5,
        "tokens": [{"token": TOKEN, "accounts": [ACCOUNT]}],
        "accounts": [
            {
                "id": ACCOUNT,
                "timezone_name": "Europe/Stockholm",
                "history_days": 1200,
                "campaigns": 1,
                "adsets_per_campaign": 1,
                "ads_per_adset": 2,
            }
        ],
    }
    with SandboxServer(world=world, time_scale=0.0001) as sb:
        today = dt.datetime.now(ZoneInfo("Europe/Stockholm")).date()  # the account's day
        start = earliest_allowed(today)
        config = {
            "access_token": TOKEN,
            "account_ids": ACCOUNT,
            "start_date": start.isoformat(),
            "api_url": sb.base_url,
            "poll_interval": 0.01,
            "max_retry_wait": 0.2,
            "reports": [report],
        }
        run = run_tap(config, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        stream = f"insights_{report['name']}"
        records = run.of(stream)
        # The tap cuts at the account's today (not the newest delivered day: early in the
        # account's day there may be no rows for today yet); a run across midnight moves it.
        after = dt.datetime.now(ZoneInfo("Europe/Stockholm")).date()
        cutoff = reach_cutoff(after)
        assert min(r["date"] for r in records) <= (start + dt.timedelta(days=31)).isoformat()
        old = [r for r in records if r["date"] < reach_cutoff(today).isoformat()]
        recent = [r for r in records if r["date"] >= cutoff.isoformat()]
        assert old and recent
        assert all(r["reach"] is None and r["frequency"] is None for r in old)
        assert all(r["reach"] is not None for r in recent)
        assert (
            sum(1 for line in run.stderr.splitlines() if "not requested for days before" in line)
            == 1
        )
        truth = sb.truth(
            account=ACCOUNT,
            level="ad",
            since=records[0]["date"],
            until=max(r["date"] for r in records),
            breakdowns=report["breakdowns"],
        )
        want = {(t["date_start"], t["ad_id"], t["age"], t["gender"]): t for t in truth}
        got = {(r["date"], r["ad_id"], r["age"], r["gender"]): r for r in records}
        assert len(got) == len(records) and set(got) == set(want)
        for key, t in want.items():
            assert got[key]["impressions"] == int(t["impressions"])
            assert got[key]["spend"] == pytest.approx(float(t["spend"]), abs=1e-9)
            if key[0] >= cutoff.isoformat():
                assert got[key]["reach"] == int(t["reach"])


def test_every_fault_the_sandbox_injects_is_classified_as_the_tap_claims(sb) -> None:
    """Each error the tap says it handles, as the sandbox produces it, maps to its handling."""
    from tap_meta_insights.errors import GraphError

    def answer() -> GraphError:
        resp = requests.get(
            f"{sb.graph_url}/{ACCOUNT}",
            params={"fields": "name"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        return GraphError.from_response(resp.status_code, resp.json())

    for code in (4, 17, 32, 613, *range(80000, 80009)):
        sb.clear_faults()
        sb.add_fault({"kind": "rate_limit", "account": ACCOUNT, "seconds": 10**9, "code": code})
        err = answer()
        assert (err.code, classify(err)) == (code, ErrorKind.RATE_LIMIT)
    sb.clear_faults()
    sb.add_fault({"kind": "http_500_every", "k": 1})
    assert {classify(answer()) for _ in range(2)} == {ErrorKind.TRANSIENT}
