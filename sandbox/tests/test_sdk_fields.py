"""Every field and action breakdown Meta publishes, driven through Meta's own SDK."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from facebook_business.adobjects.ad import Ad
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.adset import AdSet
from facebook_business.adobjects.adsinsights import AdsInsights
from facebook_business.adobjects.campaign import Campaign
from facebook_business.exceptions import FacebookRequestError
from meta_sandbox import insights_fields, object_fields
from meta_sandbox.action_breakdowns import APPLIES_TO
from sandbox_support import ACT
from test_sdk import sdk

RANGE = {"since": "2026-11-01", "until": "2026-11-03"}
WINDOWS = ["1d_click", "7d_click", "28d_click", "1d_view", "7d_view", "28d_view", "dda"]
ALL_FIELDS = sorted(v for k, v in vars(AdsInsights.Field).items() if not k.startswith("_"))
ACTION_BREAKDOWNS = sorted(
    v for k, v in vars(AdsInsights.ActionBreakdowns).items() if not k.startswith("_")
)
ASKED_BREAKDOWNS = [
    "action_type",
    "action_target_id",
    "action_destination",
    "action_device",
    "action_reaction",
    "action_video_type",
]
TRUTH_FIELDS = [
    "impressions",
    "reach",
    "frequency",
    "clicks",
    "inline_link_clicks",
    "spend",
    "ctr",
    "cpc",
    "cpm",
    "actions",
    "action_values",
]


def _sdk_names(cls) -> set[str]:
    return {v for k, v in vars(cls.Field).items() if not k.startswith("_")}


def test_static_field_lists_match_the_installed_sdk():
    assert set(insights_fields.META_INSIGHTS_FIELDS) == set(ALL_FIELDS)
    assert set(insights_fields.ACTION_BREAKDOWNS) == set(ACTION_BREAKDOWNS)
    for kind in ("ACTION_LIST_FIELDS", "HISTOGRAM_FIELDS"):
        sdk_type = "list<AdsActionStats>" if kind == "ACTION_LIST_FIELDS" else "list<AdsHistogram"
        expected = {f for f in ALL_FIELDS if AdsInsights._field_types[f].startswith(sdk_type)}
        assert set(getattr(insights_fields, kind)) == expected
    assert _sdk_names(AdAccount) == object_fields.ACCOUNT_FIELDS
    assert _sdk_names(Campaign) == object_fields.CAMPAIGN_FIELDS
    assert _sdk_names(AdSet) == object_fields.ADSET_FIELDS
    assert _sdk_names(Ad) == object_fields.AD_FIELDS


def _insights(api, level: str, fields: list[str], **params) -> list[dict]:
    return [
        r.export_all_data()
        for r in AdAccount(ACT, api=api).get_insights(
            fields=fields,
            params={
                "level": level,
                "time_range": RANGE,
                "time_increment": 1,
                "action_attribution_windows": WINDOWS[:-1],
                "limit": 500,
                **params,
            },
        )
    ]


@pytest.mark.parametrize("level", ["ad", "account"])
def test_every_insights_field_at_once_reconciles_with_truth(sandbox, level):
    api = sdk(sandbox.base_url)
    rows = _insights(api, level, ALL_FIELDS)
    truth = sandbox.truth(ACT, level, RANGE["since"], RANGE["until"], windows=WINDOWS[:-1])
    assert len(rows) == len(truth) > 0
    for row, expected in zip(rows, truth, strict=True):
        for name in TRUTH_FIELDS:
            assert row.get(name) == expected.get(name), name
        assert set(row) <= set(ALL_FIELDS)  # no key Meta would not send


def test_each_insights_field_alone_answers_200(sandbox):
    api = sdk(sandbox.base_url)
    present: set[str] = set()
    for name in ALL_FIELDS:
        rows = _insights(api, "ad", [name])
        assert rows, name
        present |= {k for r in rows for k in r}
    # Numbers and action lists are filled in; only Meta's empty-for-this-ad fields are omitted.
    for name in ("video_p25_watched_actions", "unique_clicks", "outbound_clicks", "purchase_roas"):
        assert name in present


def test_unmodelled_numbers_are_plausible(sandbox):
    api = sdk(sandbox.base_url)
    fields = [
        "impressions",
        "reach",
        "clicks",
        "spend",
        "unique_clicks",
        "cost_per_unique_click",
        "full_view_reach",
        "video_p25_watched_actions",
        "video_p100_watched_actions",
        "quality_ranking",
    ]
    rows = _insights(api, "ad", fields)
    for r in rows:
        assert 0 <= int(r["unique_clicks"]) <= int(r["clicks"])
        assert int(r["full_view_reach"]) <= int(r["reach"])
        if int(r["unique_clicks"]):
            cost = Decimal(r["spend"]) / int(r["unique_clicks"])
            assert abs(Decimal(r["cost_per_unique_click"]) - cost) < Decimal("0.01")
        p25 = int(r.get("video_p25_watched_actions", [{"value": 0}])[0]["value"])
        p100 = int(r.get("video_p100_watched_actions", [{"value": 0}])[0]["value"])
        assert p100 <= p25 <= int(r["impressions"])
        assert r["quality_ranking"] in (
            "UNKNOWN",
            "ABOVE_AVERAGE",
            "AVERAGE",
            "BELOW_AVERAGE_35",
            "BELOW_AVERAGE_20",
            "BELOW_AVERAGE_10",
        )
    assert _insights(api, "ad", fields) == rows  # deterministic


def _sums(items: list[dict], keys: list[str]) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for item in items:
        for key in keys:
            if key in item:
                out[(item["action_type"], key)] += Decimal(item[key])
    return dict(out)


@pytest.mark.parametrize("extra", [b for b in ACTION_BREAKDOWNS if b != "action_type"])
def test_each_action_breakdown_sums_to_the_unbroken_action(sandbox, extra):
    api = sdk(sandbox.base_url)
    fields = ["ad_id", "actions", "action_values", "cost_per_action_type"]
    plain = _insights(api, "ad", fields, action_attribution_windows=WINDOWS)
    broken = _insights(
        api,
        "ad",
        fields,
        action_attribution_windows=WINDOWS,
        action_breakdowns=["action_type", extra],
    )
    assert [r["ad_id"] for r in broken] == [r["ad_id"] for r in plain]
    keys = ["value", *WINDOWS]
    for a, b in zip(plain, broken, strict=True):
        for name in ("actions", "action_values"):
            assert _sums(b.get(name, []), keys) == _sums(a.get(name, []), keys)
            for item in b.get(name, []):
                applies = APPLIES_TO.get(extra)
                assert (extra in item) == (applies is None or item["action_type"] in applies)
                assert Decimal(item["1d_click"]) <= Decimal(item["7d_click"])
                assert Decimal(item["7d_click"]) <= Decimal(item["28d_click"])
                assert Decimal(item["1d_view"]) <= Decimal(item["7d_view"])


def test_the_asked_action_breakdowns_together(sandbox):
    api = sdk(sandbox.base_url)
    plain = _insights(api, "campaign", ["campaign_id", "actions"])
    broken = _insights(
        api, "campaign", ["campaign_id", "actions"], action_breakdowns=ASKED_BREAKDOWNS
    )
    keys = ["value", *WINDOWS[:-1]]
    for a, b in zip(plain, broken, strict=True):
        assert _sums(b.get("actions", []), keys) == _sums(a.get("actions", []), keys)
        for item in b.get("actions", []):
            assert {"action_target_id", "action_destination", "action_device"} <= set(item)


def test_names_meta_rejects_still_get_code_100(sandbox):
    api = sdk(sandbox.base_url)
    for params in ({"fields": ["spendz"]}, {"action_breakdowns": ["action_colour"]}):
        with pytest.raises(FacebookRequestError) as info:
            list(
                AdAccount(ACT, api=api).get_insights(
                    fields=params.get("fields", ["spend"]),
                    params={
                        "time_range": RANGE,
                        **{k: v for k, v in params.items() if k != "fields"},
                    },
                )
            )
        assert info.value.api_error_code() == 100


def test_every_published_object_field_is_accepted(sandbox):
    api = sdk(sandbox.base_url)
    account = AdAccount(ACT, api=api).api_get(fields=sorted(_sdk_names(AdAccount)))
    assert account["currency"] == "SEK"
    for edge, cls in (("get_campaigns", Campaign), ("get_ad_sets", AdSet), ("get_ads", Ad)):
        items = list(getattr(AdAccount(ACT, api=api), edge)(fields=sorted(_sdk_names(cls))))
        assert items and all(i["id"] and i["name"] for i in items)
    with pytest.raises(FacebookRequestError) as info:
        AdAccount(ACT, api=api).api_get(fields=["nonsense_field"])
    assert info.value.api_error_code() == 100
