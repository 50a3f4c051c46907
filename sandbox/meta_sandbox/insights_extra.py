"""Values of the insights fields the sandbox does not model (Meta's other ~200 fields).

Every name in Meta's published list (insights_fields.py) is accepted. The ones below are
derived from a row's vector (impressions, reach, clicks, link clicks, spend, conversions), so
they are deterministic, plausible and consistent with the modelled numbers (a count never
exceeds its base, a cost is spend over its count). Everything else — messaging, catalog,
playable, auction, creative-diversity, configurable-attribution and result-object fields —
is omitted from the rows, as Meta omits fields for which an ad has no data.

``extra_field(name, level)`` returns ``f(v, ident, date_start) -> value | None`` (None: the
key is left out of this row) or None when the field is always omitted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .hashing import unit
from .metrics import CLICKS, CONV0, CONVERSION_TYPES, ILC, IMP, LPV, PVAL0, REACH, SPEND

Extra = Callable[[list[int], dict[str, str], str], Any]

_PURCHASES = CONV0 + 6 * CONVERSION_TYPES.index("purchase")

# Integer counts: (base slot of the vector, share of the base).
COUNTS: dict[str, tuple[int, float]] = {
    "unique_clicks": (CLICKS, 0.93),
    "unique_inline_link_clicks": (ILC, 0.94),
    "inline_post_engagement": (CLICKS, 1.15),
    "full_view_impressions": (IMP, 0.41),
    "full_view_reach": (REACH, 0.38),
    "estimated_ad_recallers": (REACH, 0.06),
    "estimated_ad_recallers_lower_bound": (REACH, 0.05),
    "estimated_ad_recallers_upper_bound": (REACH, 0.07),
    "instagram_profile_visits": (CLICKS, 0.04),
    "instagram_profile_follow": (CLICKS, 0.01),
    "product_views": (LPV, 0.8),
    "dda_countby_convs": (_PURCHASES + 1, 1.0),
}
# Costs: spend (money, 2 decimals) / the count field named.
COSTS = {
    "cost_per_unique_click": "unique_clicks",
    "cost_per_unique_inline_link_click": "unique_inline_link_clicks",
    "cost_per_inline_post_engagement": "inline_post_engagement",
    "cost_per_estimated_ad_recallers": "estimated_ad_recallers",
    "cost_per_dda_countby_convs": "dda_countby_convs",
}
# Percentages (6 decimals): 100 x count / base slot.
RATES: dict[str, tuple[str, int]] = {
    "unique_ctr": ("unique_clicks", REACH),
    "unique_inline_link_click_ctr": ("unique_inline_link_clicks", REACH),
    "unique_link_clicks_ctr": ("unique_inline_link_clicks", REACH),
    "estimated_ad_recall_rate": ("estimated_ad_recallers", REACH),
    "estimated_ad_recall_rate_lower_bound": ("estimated_ad_recallers_lower_bound", REACH),
    "estimated_ad_recall_rate_upper_bound": ("estimated_ad_recallers_upper_bound", REACH),
}
# Plain ratios of two vector slots (6 decimals).
RATIOS = {
    "landing_page_view_per_link_click": (LPV, ILC),
    "landing_page_view_actions_per_link_click": (LPV, ILC),
    "purchases_per_link_click": (_PURCHASES + 1, ILC),
    "purchase_per_landing_page_view": (_PURCHASES + 1, LPV),
}
# Video action lists ({"action_type": "video_view", "value": n}): share of impressions.
VIDEO = {
    "video_play_actions": 0.30,
    "video_continuous_2_sec_watched_actions": 0.22,
    "unique_video_continuous_2_sec_watched_actions": 0.20,
    "video_6_sec_watched_actions": 0.15,
    "video_15_sec_watched_actions": 0.10,
    "unique_video_view_15_sec": 0.09,
    "video_30_sec_watched_actions": 0.07,
    "video_p25_watched_actions": 0.18,
    "video_p50_watched_actions": 0.11,
    "video_p75_watched_actions": 0.07,
    "video_p95_watched_actions": 0.05,
    "video_p100_watched_actions": 0.045,
    "video_thruplay_watched_actions": 0.09,
}
VIDEO_COSTS = {
    "cost_per_thruplay": "video_thruplay_watched_actions",
    "cost_per_15_sec_video_view": "video_15_sec_watched_actions",
    "cost_per_2_sec_continuous_video_view": "video_continuous_2_sec_watched_actions",
    "cost_per_6_sec_video_view": "video_6_sec_watched_actions",
}
HISTOGRAMS = (
    "video_play_curve_actions",
    "video_play_retention_0_to_15s_actions",
    "video_play_retention_20_to_60s_actions",
    "video_play_retention_graph_actions",
)
RANKINGS = ("quality_ranking", "engagement_rate_ranking", "conversion_rate_ranking")
RANKING_VALUES = (
    "ABOVE_AVERAGE",
    "AVERAGE",
    "BELOW_AVERAGE_35",
    "BELOW_AVERAGE_20",
    "BELOW_AVERAGE_10",
)
RANKING_MIN_IMPRESSIONS = 500  # Meta answers UNKNOWN below this


def _count(name: str, v: list[int]) -> int:
    slot, share = COUNTS[name]
    return int(v[slot] * share)


def _money(cents: float) -> str:
    return f"{cents / 100.0:.2f}"


def _ratio(x: float) -> str:
    return f"{x:.6f}"


def _video(name: str, v: list[int]) -> int:
    return int(v[IMP] * VIDEO[name])


def _outbound(v: list[int], unique: bool) -> int:
    return int(v[ILC] * 0.92) if unique else v[ILC]


def _purchase_value_cents(v: list[int]) -> int:
    return v[PVAL0 + 1] + v[PVAL0 + 3]  # default attribution: 7d_click + 1d_view


def _purchases(v: list[int]) -> int:
    return v[_PURCHASES + 1] + v[_PURCHASES + 3]


def _scalar(name: str, level: str) -> Extra | None:
    if name in COUNTS:
        return lambda v, ident, day: str(_count(name, v))
    if name in COSTS:
        base = COSTS[name]
        return lambda v, ident, day: (_money(v[SPEND] / n) if (n := _count(base, v)) else None)
    if name in RATES:
        count, slot = RATES[name]
        return lambda v, ident, day: _ratio(_count(count, v) * 100.0 / v[slot]) if v[slot] else None
    if name in RATIOS:
        top, bottom = RATIOS[name]
        return lambda v, ident, day: _ratio(v[top] / v[bottom]) if v[bottom] else None
    if name == "social_spend":
        return lambda v, ident, day: _money(v[SPEND] * 0.12)
    if name in ("created_time", "updated_time"):
        return lambda v, ident, day: day
    if name in RANKINGS:
        if level != "ad":
            return lambda v, ident, day: "UNKNOWN"

        def ranking(v: list[int], ident: dict[str, str], day: str) -> str:
            if v[IMP] < RANKING_MIN_IMPRESSIONS:
                return "UNKNOWN"
            k = int(unit("ranking", name, ident.get("ad_id", "")) * len(RANKING_VALUES))
            return RANKING_VALUES[k]

        return ranking
    return None


def _action_list(name: str) -> Extra | None:
    if name in VIDEO:
        return lambda v, ident, day: (
            [{"action_type": "video_view", "value": str(n)}] if (n := _video(name, v)) else None
        )
    if name in VIDEO_COSTS:
        base = VIDEO_COSTS[name]
        return lambda v, ident, day: (
            [{"action_type": "video_view", "value": _money(v[SPEND] / n)}]
            if (n := _video(base, v))
            else None
        )
    if name == "video_avg_time_watched_actions":
        return lambda v, ident, day: (
            [{"action_type": "video_view", "value": str(3 + int(4 * unit("avg", v[IMP])))}]
            if v[IMP]
            else None
        )
    if name in ("outbound_clicks", "unique_outbound_clicks"):
        unique = name.startswith("unique")
        return lambda v, ident, day: (
            [{"action_type": "outbound_click", "value": str(n)}]
            if (n := _outbound(v, unique))
            else None
        )
    if name in ("cost_per_outbound_click", "cost_per_unique_outbound_click"):
        unique = "unique" in name
        return lambda v, ident, day: (
            [{"action_type": "outbound_click", "value": _ratio(v[SPEND] / 100.0 / n)}]
            if (n := _outbound(v, unique))
            else None
        )
    if name in ("outbound_clicks_ctr", "unique_outbound_clicks_ctr"):
        unique = "unique" in name
        slot = REACH if unique else IMP
        return lambda v, ident, day: (
            [{"action_type": "outbound_click", "value": _ratio(_outbound(v, unique) * 100 / d)}]
            if (d := v[slot]) and v[ILC]
            else None
        )
    if name == "website_ctr":
        return lambda v, ident, day: (
            [{"action_type": "link_click", "value": _ratio(v[ILC] * 100.0 / v[IMP])}]
            if v[IMP] and v[ILC]
            else None
        )
    if name == "unique_actions":
        return (
            lambda v, ident, day: [
                {"action_type": t, "value": str(n)}
                for t, n in (
                    ("link_click", int(v[ILC] * 0.94)),
                    ("landing_page_view", int(v[LPV] * 0.96)),
                )
                if n
            ]
            or None
        )
    if name == "cost_per_unique_action_type":
        return (
            lambda v, ident, day: [
                {"action_type": "link_click", "value": _ratio(v[SPEND] / 100.0 / n)}
                for n in (int(v[ILC] * 0.94),)
                if n
            ]
            or None
        )
    if name in ("purchase_roas", "website_purchase_roas"):
        action = (
            "omni_purchase" if name == "purchase_roas" else "offsite_conversion.fb_pixel_purchase"
        )
        return lambda v, ident, day: (
            [{"action_type": action, "value": _ratio(_purchase_value_cents(v) / v[SPEND])}]
            if v[SPEND] and _purchase_value_cents(v)
            else None
        )
    if name == "average_purchases_conversion_value":
        return lambda v, ident, day: (
            [{"action_type": "purchase", "value": _money(_purchase_value_cents(v) / n)}]
            if (n := _purchases(v))
            else None
        )
    return None


def _histogram(name: str) -> Extra:
    def curve(v: list[int], ident: dict[str, str], day: str) -> list[dict[str, Any]] | None:
        if not v[IMP]:
            return None
        points = [int(100 * 0.82**k) for k in range(15)]
        return [{"action_type": "video_view", "value": points}]

    return curve


def extra_field(name: str, level: str, kind: str) -> Extra | None:
    """The value function of an unmodelled field (kind: scalar, actions, histogram, objects)."""
    if kind == "scalar":
        return _scalar(name, level)
    if kind == "actions":
        return _action_list(name)
    if kind == "histogram":
        return _histogram(name)
    return None  # result objects: omitted
