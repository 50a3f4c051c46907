"""Accounts, campaigns, ad sets, ads and insights parameters on them."""

from __future__ import annotations

from datetime import datetime

from sandbox_support import ACT, ACT2, Graph

ALL = ["ACTIVE", "PAUSED", "ARCHIVED", "CAMPAIGN_PAUSED", "ADSET_PAUSED"]


def test_me_and_adaccounts_paging(graph: Graph):
    me = graph.get("me").json()
    assert set(me) == {"id", "name"}
    first = graph.get("me/adaccounts", limit=1).json()
    assert first["data"] == [{"account_id": ACT[4:], "id": ACT}]
    second = graph.http.get(first["paging"]["next"], timeout=10).json()
    assert second["data"][0]["id"] == ACT2 and "next" not in second["paging"]
    acct = graph.get(ACT, fields="id,account_id,name,currency,timezone_name,account_status").json()
    assert acct == {
        "id": ACT,
        "account_id": ACT[4:],
        "name": "Nordic Shoes AB",
        "currency": "SEK",
        "timezone_name": "Europe/Stockholm",
        "account_status": 1,
    }


def test_object_lists_fields_statuses_and_filters(sandbox, graph: Graph):
    counts = next(a for a in sandbox.world()["accounts"] if a["id"] == ACT)
    fields = "id,name,status,effective_status,created_time,updated_time,campaign_id,adset_id"
    ads = graph.all_pages(f"{ACT}/ads", fields=fields, effective_status=ALL, limit=5)
    assert len(ads) == counts["ads"] == len({a["id"] for a in ads})
    adsets = graph.all_pages(f"{ACT}/adsets", effective_status=ALL, fields="id,campaign_id")
    assert len(adsets) == counts["adsets"]
    assert {a["adset_id"] for a in ads} == {s["id"] for s in adsets}
    for ad in ads:
        created = datetime.strptime(ad["created_time"], "%Y-%m-%dT%H:%M:%S%z")
        assert datetime.strptime(ad["updated_time"], "%Y-%m-%dT%H:%M:%S%z") >= created
    default = graph.all_pages(f"{ACT}/ads", fields="effective_status")
    assert all(a["effective_status"] != "ARCHIVED" for a in default)
    campaign = ads[0]["campaign_id"]
    under = graph.all_pages(f"{campaign}/ads", effective_status=ALL, fields="campaign_id")
    assert under and all(a["campaign_id"] == campaign for a in under)
    cutoff = int(
        min(datetime.strptime(a["updated_time"], "%Y-%m-%dT%H:%M:%S%z") for a in ads).timestamp()
    )
    newer = graph.all_pages(
        f"{ACT}/ads",
        effective_status=ALL,
        filtering=[{"field": "updated_time", "operator": "GREATER_THAN", "value": cutoff}],
    )
    assert 0 < len(newer) < len(ads)
    summary = graph.get(f"{ACT}/campaigns", summary="true", effective_status=ALL).json()
    assert summary["summary"]["total_count"] == counts["campaigns"]
    node = graph.get(ads[0]["id"], fields="name,adset_id").json()
    assert node["adset_id"] == ads[0]["adset_id"] and node["id"] == ads[0]["id"]


def test_insights_filtering_nodes_ranges_and_presets(sandbox, graph: Graph):
    truth = sandbox.truth(ACT, "ad", "2026-11-01", "2026-11-07")
    ad_id, campaign_id = truth[0]["ad_id"], truth[0]["campaign_id"]
    rng = {"since": "2026-11-01", "until": "2026-11-07"}
    one = graph.all_pages(
        f"{ACT}/insights",
        level="ad",
        fields="ad_id,spend",
        time_range=rng,
        time_increment=1,
        filtering=[{"field": "ad.id", "operator": "IN", "value": [ad_id]}],
    )
    assert {r["ad_id"] for r in one} == {ad_id}
    assert [r["spend"] for r in one] == [t["spend"] for t in truth if t["ad_id"] == ad_id]
    by_node = graph.all_pages(
        f"{campaign_id}/insights", fields="campaign_id,impressions", time_range=rng
    )
    expected = sum(int(t["impressions"]) for t in truth if t["campaign_id"] == campaign_id)
    assert [int(r["impressions"]) for r in by_node] == [expected]
    assert graph.get(f"{campaign_id}/insights", level="account").json()["error"]["code"] == 100
    ranges = graph.get(
        f"{ACT}/insights",
        time_ranges=[rng, {"since": "2026-11-01", "until": "2026-11-01"}],
        fields="impressions",
    ).json()["data"]
    assert [(r["date_start"], r["date_stop"]) for r in ranges] == [
        ("2026-11-01", "2026-11-07"),
        ("2026-11-01", "2026-11-01"),
    ]
    assert int(ranges[0]["impressions"]) == sum(int(t["impressions"]) for t in truth)
    preset = graph.get(f"{ACT}/insights", date_preset="last_7d", fields="impressions").json()
    assert (preset["data"][0]["date_start"], preset["data"][0]["date_stop"]) == (
        "2026-11-21",
        "2026-11-27",
    )
    paused = graph.all_pages(
        f"{ACT}/insights",
        level="ad",
        fields="ad_id",
        time_range=rng,
        filtering=[{"field": "ad.effective_status", "operator": "IN", "value": ["ACTIVE"]}],
    )
    active = {a["id"] for a in graph.all_pages(f"{ACT}/ads", effective_status=["ACTIVE"])}
    assert {r["ad_id"] for r in paused} <= active
