"""Acceptance: a one-year async ad-level job for a 200-ad account equals the truth."""

from __future__ import annotations

import time

from meta_sandbox.testing import SandboxServer
from sandbox_support import Graph

WORLD = {
    "seed": 2024,
    "now": "2026-11-28T12:00:00Z",
    "tokens": [{"token": "tok-big", "accounts": ["act_900001"]}],
    "accounts": [
        {
            "id": "act_900001",
            "name": "Big Spender GmbH",
            "currency": "EUR",
            "timezone_name": "Europe/Berlin",
            "history_days": 400,
            "campaigns": 5,
            "adsets_per_campaign": 4,
            "ads_per_adset": 10,
        }
    ],
}
FIELDS = (
    "account_id,account_name,account_currency,campaign_id,campaign_name,adset_id,adset_name,"
    "ad_id,ad_name,impressions,reach,frequency,clicks,inline_link_clicks,spend,ctr,cpc,cpm,"
    "actions,action_values"
)
WINDOWS = ["1d_view", "7d_click", "28d_click"]


def test_one_year_ad_level_job_equals_truth():
    with SandboxServer(world=WORLD, time_scale=0.001) as sb:
        assert sb.world()["accounts"][0]["ads"] == 200
        g = Graph(sb, token="tok-big")
        started = time.monotonic()
        run = g.post(
            "act_900001/insights",
            level="ad",
            fields=FIELDS,
            time_range={"since": "2025-11-28", "until": "2026-11-27"},
            time_increment=1,
            action_attribution_windows=WINDOWS,
        ).json()["report_run_id"]
        assert g.wait_job(run, timeout=60)["async_status"] == "Job Completed"
        job_seconds = time.monotonic() - started
        rows = []
        pages = 0
        body = g.get(f"{run}/insights", limit=500).json()
        while True:
            rows.extend(body["data"])
            pages += 1
            if "next" not in body.get("paging", {}):
                break
            body = g.http.get(body["paging"]["next"], timeout=30).json()
        total_seconds = time.monotonic() - started
        truth = sb.truth("act_900001", "ad", "2025-11-28", "2026-11-27", windows=WINDOWS)
        assert len(rows) > 50_000
        assert pages == -(-len(rows) // 500)
        assert rows == truth
        assert sb.stats()["rows_served"] == len(rows)
        print(
            f"\n200 ads x 1 year: {len(rows)} rows, job {job_seconds:.2f} s, "
            f"job + {pages} pages {total_seconds:.2f} s"
        )
