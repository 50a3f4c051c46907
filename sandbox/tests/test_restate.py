"""Restatements: the world's numbers shrink retroactively (POST /__sandbox/restate)."""

from __future__ import annotations

import json
from decimal import Decimal

import requests
from meta_sandbox.testing import SandboxServer
from sandbox_support import ACT, Graph

SINCE, UNTIL = "2026-11-01", "2026-11-10"


def _sync_rows(graph: Graph, level: str) -> list[dict]:
    response = graph.get(
        f"{ACT}/insights",
        level=level,
        fields=f"{level}_id,spend,impressions",
        time_range=json.dumps({"since": SINCE, "until": UNTIL}),
        time_increment=1,
        limit=5000,
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _spend(rows: list[dict], key: str) -> dict[tuple, Decimal]:
    return {(r[key], r["date_start"]): Decimal(r["spend"]) for r in rows}


def test_restating_an_ad_removes_its_rows_from_insights_and_truth(fresh: SandboxServer):
    graph = Graph(fresh)
    before_ads = _spend(_sync_rows(graph, "ad"), "ad_id")
    before_campaigns = _spend(_sync_rows(graph, "campaign"), "campaign_id")
    ad_id = sorted({ad for ad, _ in before_ads})[0]
    days = sorted(d for ad, d in before_ads if ad == ad_id)
    assert len(days) >= 3, "the chosen ad delivered on several days"
    gone = days[1:3]

    done = fresh.restate(ad=ad_id, since=gone[0], until=gone[-1])
    assert done["ads"] == [ad_id]

    after_ads = _spend(_sync_rows(graph, "ad"), "ad_id")
    assert set(after_ads) == set(before_ads) - {(ad_id, d) for d in gone}
    assert all(after_ads[k] == v for k, v in before_ads.items() if k in after_ads)
    # parents shrink by exactly the removed spend
    campaign = next(
        r["campaign_id"]
        for r in fresh.truth(account=ACT, level="ad", since=SINCE, until=UNTIL)
        if r["ad_id"] == ad_id
    )
    after_campaigns = _spend(_sync_rows(graph, "campaign"), "campaign_id")
    for day in gone:
        removed = before_ads[(ad_id, day)]
        assert after_campaigns.get((campaign, day), Decimal(0)) == (
            before_campaigns[(campaign, day)] - removed
        )
    # the truth endpoint agrees with the Graph API
    truth = fresh.truth(account=ACT, level="ad", since=SINCE, until=UNTIL)
    assert _spend(truth, "ad_id") == after_ads
    listed = requests.get(f"{fresh.base_url}/__sandbox/restate", timeout=10).json()
    assert listed["restatements"][0]["ad"] == ad_id


def test_restating_a_campaign_for_all_days_and_bad_rules(fresh: SandboxServer):
    graph = Graph(fresh)
    campaign = sorted({r["campaign_id"] for r in _sync_rows(graph, "campaign")})[0]
    fresh.restate(campaign=campaign)
    assert campaign not in {r["campaign_id"] for r in _sync_rows(graph, "campaign")}
    for bad in ({}, {"ad": "1", "campaign": "2"}, {"ad": "nope"}, {"ad": "1", "when": "x"}):
        response = requests.post(f"{fresh.base_url}/__sandbox/restate", json=bad, timeout=10)
        assert response.status_code == 400, bad
