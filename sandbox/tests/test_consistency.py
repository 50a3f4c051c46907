"""Determinism and internal consistency of the generated data."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal

import requests
from meta_sandbox.testing import SandboxServer
from sandbox_support import ACT, NOW, TOKEN, Graph, small_world

WINDOWS = ["1d_click", "7d_click", "28d_click", "1d_view", "7d_view", "28d_view"]
SINCE, UNTIL = "2026-10-15", "2026-11-28"  # includes late-attribution days and partial today


def additive(row: dict) -> dict[str, int]:
    """Every additive metric of a row, money in cents."""
    out = {
        "impressions": int(row["impressions"]),
        "clicks": int(row["clicks"]),
        "inline_link_clicks": int(row["inline_link_clicks"]),
        "spend": int(Decimal(row["spend"]) * 100),
    }
    for kind in ("actions", "action_values"):
        for item in row.get(kind, []):
            for key, value in item.items():
                if key != "action_type":
                    out[f"{kind}:{item['action_type']}:{key}"] = int(Decimal(value) * 100)
    return out


def summed(rows: list[dict], key_fields: tuple[str, ...]) -> dict[tuple, dict[str, int]]:
    totals: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        bucket = totals[tuple(row[f] for f in key_fields)]
        for name, value in additive(row).items():
            bucket[name] += value
    return {k: {n: v for n, v in d.items() if v} for k, d in totals.items()}


def keyed(rows: list[dict], key_fields: tuple[str, ...]) -> dict[tuple, dict[str, int]]:
    return {
        tuple(r[f] for f in key_fields): {n: v for n, v in additive(r).items() if v} for r in rows
    }


def test_same_seed_same_bytes_and_other_seed_differs():
    params = {
        "access_token": TOKEN,
        "level": "ad",
        "fields": "ad_id,ad_name,impressions,reach,spend,actions,action_values",
        "time_range": json.dumps({"since": SINCE, "until": UNTIL}),
        "time_increment": "1",
        "action_attribution_windows": json.dumps(WINDOWS),
        "limit": "5000",
    }
    bodies = []
    truths = []
    for seed in (7, 7, 8):
        world = {**small_world(), "seed": seed}
        with SandboxServer(world=world) as sb:
            resp = requests.get(f"{sb.graph_url}/{ACT}/insights", params=params, timeout=30)
            assert resp.status_code == 200
            bodies.append(json.dumps(resp.json()["data"]).encode())
            truths.append(
                requests.get(
                    f"{sb.base_url}/__sandbox/truth",
                    params={"account": ACT, "level": "campaign", "since": SINCE, "until": UNTIL},
                    timeout=30,
                ).content
            )
    assert bodies[0] == bodies[1] and truths[0] == truths[1]
    assert bodies[0] != bodies[2] and truths[0] != truths[2]


def test_levels_reconcile_to_the_cent(sandbox):
    rows = {
        level: sandbox.truth(ACT, level, SINCE, UNTIL, windows=WINDOWS)
        for level in ("ad", "adset", "campaign", "account")
    }
    assert rows["ad"], "the world delivers in this range"
    for level, key in (("adset", "adset_id"), ("campaign", "campaign_id")):
        assert summed(rows["ad"], (key, "date_start")) == keyed(rows[level], (key, "date_start"))
    assert summed(rows["ad"], ("date_start",)) == keyed(rows["account"], ("date_start",))
    # Reach is not additive: below the children's sum, at least the largest child's.
    children = defaultdict(list)
    for r in rows["ad"]:
        children[(r["campaign_id"], r["date_start"])].append(int(r["reach"]))
    strictly_below = 0
    for r in rows["campaign"]:
        kids = children[(r["campaign_id"], r["date_start"])]
        reach = int(r["reach"])
        assert max(kids) <= reach <= sum(kids)
        assert reach <= int(r["impressions"])
        if len(kids) > 1:
            assert reach < sum(kids)
            strictly_below += 1
        freq = Decimal(r["frequency"])
        assert abs(freq - Decimal(r["impressions"]) / reach) < Decimal("0.000001")
    assert strictly_below > 0


def test_breakdowns_sum_to_totals_and_windows_are_ordered(sandbox):
    totals = sandbox.truth(ACT, "ad", "2026-11-10", "2026-11-28", windows=WINDOWS)
    for dims in (["age", "gender"], ["country"], ["publisher_platform", "device_platform"]):
        cells = sandbox.truth(
            ACT, "ad", "2026-11-10", "2026-11-28", breakdowns=dims, windows=WINDOWS
        )
        assert all(all(c.get(d) for d in dims) for c in cells)
        assert summed(cells, ("ad_id", "date_start")) == keyed(totals, ("ad_id", "date_start"))
        for c in cells:
            assert int(c["reach"]) <= int(c["impressions"])
            assert int(c["clicks"]) <= int(c["impressions"])
            for item in c.get("actions", []) + c.get("action_values", []):
                v = {k: Decimal(item[k]) for k in WINDOWS}
                assert v["1d_click"] <= v["7d_click"] <= v["28d_click"]
                assert v["1d_view"] <= v["7d_view"] <= v["28d_view"]
                assert Decimal(item["value"]) == v["7d_click"] + v["1d_view"]


def test_parent_level_breakdowns_sum_to_parent_totals(sandbox):
    totals = sandbox.truth(ACT, "campaign", "2026-11-20", "2026-11-27", windows=WINDOWS)
    cells = sandbox.truth(
        ACT, "campaign", "2026-11-20", "2026-11-27", breakdowns=["age"], windows=WINDOWS
    )
    assert summed(cells, ("campaign_id", "date_start")) == keyed(
        totals, ("campaign_id", "date_start")
    )
    ad_cells = sandbox.truth(
        ACT, "ad", "2026-11-20", "2026-11-27", breakdowns=["age"], windows=WINDOWS
    )
    assert summed(ad_cells, ("campaign_id", "date_start", "age")) == keyed(
        cells, ("campaign_id", "date_start", "age")
    )


def test_rows_only_for_delivering_objects_and_strings(graph: Graph):
    body = graph.get(
        f"{ACT}/insights",
        level="ad",
        fields="ad_id,impressions,spend,ctr",
        time_range={"since": "2026-11-01", "until": "2026-11-27"},
        time_increment=1,
        limit=5000,
    ).json()
    assert body["data"]
    for row in body["data"]:
        assert int(row["impressions"]) > 0
        assert all(isinstance(v, str) for v in row.values())
        assert row["spend"].count(".") == 1 and len(row["spend"].split(".")[1]) == 2
        assert set(row) == {"ad_id", "impressions", "spend", "ctr", "date_start", "date_stop"}


def test_time_increments_aggregate_days(graph: Graph):
    daily = graph.all_pages(
        f"{ACT}/insights",
        level="campaign",
        fields="campaign_id,impressions,spend,reach",
        time_range={"since": "2026-09-01", "until": "2026-10-31"},
        time_increment=1,
        limit=500,
    )
    for inc, expected_periods in (("monthly", 2), ("all_days", 1), ("7", 9)):
        rows = graph.all_pages(
            f"{ACT}/insights",
            level="campaign",
            fields="campaign_id,impressions,spend,reach",
            time_range={"since": "2026-09-01", "until": "2026-10-31"},
            time_increment=inc,
            limit=500,
        )
        assert len({(r["date_start"], r["date_stop"]) for r in rows}) == expected_periods
        per_campaign = defaultdict(int)
        for r in rows:
            per_campaign[r["campaign_id"]] += int(r["impressions"])
        expected = defaultdict(int)
        for r in daily:
            expected[r["campaign_id"]] += int(r["impressions"])
        assert per_campaign == expected
        if inc == "all_days":
            for r in rows:
                days = [int(d["reach"]) for d in daily if d["campaign_id"] == r["campaign_id"]]
                assert max(days) <= int(r["reach"]) < sum(days)


def test_default_world_from_seed():
    with SandboxServer(seed=3) as sb:
        world = sb.world()
        assert len(world["tokens"]) == 2 and len(world["accounts"]) == 3
        assert len({a["timezone_name"] for a in world["accounts"]}) == 3
        assert len({a["currency"] for a in world["accounts"]}) == 3
        assert all(20 <= a["ads"] <= 30 for a in world["accounts"])
        assert world["now"].endswith(":00:00Z")
        acct = world["accounts"][0]["id"]
        token = next(t["token"] for t in world["tokens"] if acct in t["accounts"])
        names = requests.get(
            f"{sb.graph_url}/{acct}/campaigns",
            params={
                "access_token": token,
                "fields": "name",
                "effective_status": '["ACTIVE","PAUSED","ARCHIVED"]',
            },
            timeout=30,
        ).json()["data"]
        assert any(not n["name"].isascii() for n in names)


def test_now_comes_from_the_world(sandbox):
    assert sandbox.world()["now"] == NOW
