"""Meta's own Python SDK (facebook_business) works against the sandbox unchanged."""

from __future__ import annotations

import time

import pytest
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.adreportrun import AdReportRun
from facebook_business.adobjects.adsinsights import AdsInsights
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession
from sandbox_support import ACT, ACT_OTHER, TOKEN


def sdk(base_url: str, token: str = TOKEN) -> FacebookAdsApi:
    session = FacebookSession(access_token=token)
    session.GRAPH = base_url  # the only change against the real API
    return FacebookAdsApi(session, api_version="v23.0")


def test_account_and_objects(sandbox):
    api = sdk(sandbox.base_url)
    account = AdAccount(ACT, api=api).api_get(fields=["name", "currency", "timezone_name"])
    assert account["name"] == "Nordic Shoes AB"
    assert account["currency"] == "SEK"
    assert account["timezone_name"] == "Europe/Stockholm"
    campaigns = list(
        AdAccount(ACT, api=api).get_campaigns(
            fields=["name", "effective_status"],
            params={"limit": 1, "effective_status": ["ACTIVE", "PAUSED", "ARCHIVED"]},
        )
    )
    assert len(campaigns) == sandbox.world()["accounts"][0]["campaigns"]


def test_sync_insights(sandbox):
    api = sdk(sandbox.base_url)
    rows = list(
        AdAccount(ACT, api=api).get_insights(
            fields=[AdsInsights.Field.campaign_id, AdsInsights.Field.spend, "actions"],
            params={
                "level": "campaign",
                "time_range": {"since": "2026-11-01", "until": "2026-11-10"},
                "time_increment": 1,
                "action_attribution_windows": ["7d_click", "1d_view"],
                "limit": 7,
            },
        )
    )
    truth = sandbox.truth(
        ACT, "campaign", "2026-11-01", "2026-11-10", windows=["7d_click", "1d_view"]
    )
    assert len(rows) == len(truth) > 7  # several pages
    assert [r["spend"] for r in rows] == [t["spend"] for t in truth]
    assert [r.get("actions") for r in rows] == [t.get("actions") for t in truth]


def test_async_job_with_polling_and_paged_results(sandbox):
    api = sdk(sandbox.base_url)
    run = AdAccount(ACT, api=api).get_insights(
        is_async=True,
        fields=["ad_id", "impressions", "spend"],
        params={
            "level": "ad",
            "time_range": {"since": "2026-10-01", "until": "2026-10-31"},
            "time_increment": 1,
        },
    )
    assert isinstance(run, AdReportRun)
    seen = set()
    deadline = time.monotonic() + 30
    while True:
        run.api_get()
        seen.add(run[AdReportRun.Field.async_status])
        if run[AdReportRun.Field.async_status] == "Job Completed":
            break
        assert time.monotonic() < deadline
        time.sleep(0.002)
    assert run[AdReportRun.Field.async_percent_completion] == 100
    rows = list(run.get_result(params={"limit": 50}))
    truth = sandbox.truth(ACT, "ad", "2026-10-01", "2026-10-31")
    assert len(rows) == len(truth) > 50
    assert [(r["ad_id"], r["date_start"], r["spend"]) for r in rows] == [
        (t["ad_id"], t["date_start"], t["spend"]) for t in truth
    ]


def test_errors_surface_as_facebook_request_error(sandbox):
    api = sdk(sandbox.base_url)
    with pytest.raises(FacebookRequestError) as exc:
        AdAccount(ACT_OTHER, api=api).api_get(fields=["name"])
    assert exc.value.api_error_code() == 200
    with pytest.raises(FacebookRequestError) as exc:
        AdAccount(ACT, api=api).get_insights(params={"level": "bogus"})
    assert exc.value.api_error_code() == 100
    bad = sdk(sandbox.base_url, token="not-a-token")
    with pytest.raises(FacebookRequestError) as exc:
        AdAccount(ACT, api=bad).api_get(fields=["name"])
    assert exc.value.api_error_code() == 190
