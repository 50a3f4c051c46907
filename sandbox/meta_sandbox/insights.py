"""The insights query engine: parameters -> InsightsQuery -> rows (Meta's JSON row shape)."""

from __future__ import annotations

import calendar
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from . import errors
from .action_breakdowns import compile_expander
from .hashing import unit
from .insights_extra import extra_field
from .insights_fields import (
    ACTION_BREAKDOWNS,
    ACTION_LIST_FIELDS,
    HISTOGRAM_FIELDS,
    META_INSIGHTS_FIELDS,
    SCALAR_FIELDS,
)
from .metrics import (
    CONV0,
    CONVERSION_TYPES,
    ILC,
    IMP,
    LPV,
    PVAL0,
    REACH,
    SUPPORTED_BREAKDOWNS,
    VECTOR_LEN,
    MetricsStore,
    breakdown_values,
    days_between,
    split_vector,
)
from .world import Account, Ad, World

LEVELS = ("ad", "adset", "campaign", "account")
LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}
ID_FIELDS = {
    "account": ("account_id", "account_name", "account_currency"),
    "campaign": ("campaign_id", "campaign_name", "objective", "buying_type"),
    "adset": ("adset_id", "adset_name", "optimization_goal"),
    "ad": ("ad_id", "ad_name"),
}
METRIC_FIELDS = (
    "impressions",
    "reach",
    "frequency",
    "clicks",
    "inline_link_clicks",
    "spend",
    "ctr",
    "cpc",
    "cpm",
    "cpp",
    "inline_link_click_ctr",
    "cost_per_inline_link_click",
    "actions",
    "action_values",
    "cost_per_action_type",
)
OTHER_FIELDS = ("date_start", "date_stop", "attribution_setting")
ALL_FIELDS = tuple(f for lvl in LEVELS[::-1] for f in ID_FIELDS[lvl]) + METRIC_FIELDS + OTHER_FIELDS
TRUTH_METRICS = (
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
)
WINDOW_NAMES = ("1d_click", "7d_click", "28d_click", "1d_view", "7d_view", "28d_view")
EXTRA_WINDOWS = ("1d_ev", "dda")  # accepted: 1d_ev is always 0, dda equals `value`
ACTION_REPORT_TIMES = ("impression", "conversion", "mixed", "lifetime")
DATE_PRESETS = (
    "today",
    "yesterday",
    "last_3d",
    "last_7d",
    "last_14d",
    "last_28d",
    "last_30d",
    "last_90d",
    "this_month",
    "last_month",
    "this_year",
    "maximum",
)
FILTER_FIELDS = ("campaign", "adset", "ad")
DEFAULT_FIELDS = ("impressions", "spend")
# Every name Meta accepts: the modelled fields first, then Meta's published list.
ACCEPTED_FIELDS = tuple(dict.fromkeys(ALL_FIELDS + META_INSIGHTS_FIELDS))
FIELD_KIND = {
    **{f: "objects" for f in META_INSIGHTS_FIELDS},
    **{f: "scalar" for f in SCALAR_FIELDS},
    **{f: "actions" for f in ACTION_LIST_FIELDS},
    **{f: "histogram" for f in HISTOGRAM_FIELDS},
}
REACH_MONTHS = 13  # reach-related fields with breakdowns: only for ranges within 13 months


def is_reach_related(field: str) -> bool:
    """Fields Meta counts as reach-related (people, not impressions): refused with breakdowns
    for ranges starting more than 13 months back."""
    return field in ("reach", "frequency", "cpp", "full_view_reach") or field.startswith(
        ("unique_", "cost_per_unique_")
    )


@dataclass(frozen=True)
class Filter:
    field: str  # e.g. campaign.id, ad.effective_status, adset.name
    operator: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class InsightsQuery:
    account_id: str
    level: str
    fields: tuple[str, ...]
    ranges: tuple[tuple[date, date], ...]
    time_increment: str  # "1".."90", "monthly", "all_days"
    breakdowns: tuple[str, ...]
    windows: tuple[str, ...]
    action_report_time: str
    filters: tuple[Filter, ...]
    root_kind: str  # account, campaign, adset, ad
    root_id: str
    action_breakdowns: tuple[str, ...] = ("action_type",)

    @property
    def span(self) -> tuple[date, date]:
        return min(r[0] for r in self.ranges), max(r[1] for r in self.ranges)

    def filtered_object_ids(self) -> int | None:
        """How many campaign/adset/ad ids the request is restricted to (None = not restricted)."""
        counts = [
            len(f.values)
            for f in self.filters
            if f.field.endswith(".id") and f.operator in ("IN", "EQUAL")
        ]
        if self.root_kind != "account":
            counts.append(1)
        return min(counts) if counts else None


def parse_list(value: Any, name: str) -> list[str]:
    """A list parameter: JSON array or comma-separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise errors.invalid_param(f"Param {name} must be an array.") from exc
        return [str(v) for v in parsed]
    return [v.strip() for v in text.split(",") if v.strip()]


def parse_json(value: Any, name: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise errors.invalid_param(f"Param {name} must be a JSON object or array") from exc


def parse_day(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise errors.invalid_param(f"Param {name} must be a date in the format YYYY-MM-DD") from exc


def months_back(day: date, months: int) -> date:
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    m += 1
    return date(y, m, min(day.day, calendar.monthrange(y, m)[1]))


def _preset_range(preset: str, today: date) -> tuple[date, date]:
    yesterday = today - timedelta(days=1)
    if preset == "today":
        return today, today
    if preset == "yesterday":
        return yesterday, yesterday
    if preset.startswith("last_") and preset.endswith("d"):
        n = int(preset[5:-1])
        return today - timedelta(days=n), yesterday
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    if preset == "this_year":
        return today.replace(month=1, day=1), today
    return months_back(today, 37) + timedelta(days=1), today  # maximum


def _parse_range(raw: Any, name: str) -> tuple[date, date]:
    obj = parse_json(raw, name)
    if not isinstance(obj, Mapping) or "since" not in obj or "until" not in obj:
        raise errors.invalid_param(f"Param {name} must be an object with since and until")
    since = parse_day(obj["since"], f"{name}[since]")
    until = parse_day(obj["until"], f"{name}[until]")
    if since > until:
        raise errors.invalid_param(f"Param {name}: since must be on or before until")
    return since, until


def _parse_filters(raw: Any) -> tuple[Filter, ...]:
    if raw in (None, ""):
        return ()
    items = parse_json(raw, "filtering")
    if not isinstance(items, list):
        raise errors.invalid_param("Param filtering must be an array")
    out = []
    for item in items:
        if not isinstance(item, Mapping) or not {"field", "operator"} <= set(item):
            raise errors.invalid_param("Each filtering item needs field, operator and value")
        fld, op = str(item["field"]), str(item["operator"]).upper()
        obj, _, attr = fld.partition(".")
        ok_attr = attr in ("id", "effective_status", "name")
        ok_op = (
            op in ("IN", "NOT_IN", "EQUAL", "NOT_EQUAL")
            if attr != "name"
            else op in ("EQUAL", "NOT_EQUAL", "CONTAIN", "NOT_CONTAIN")
        )
        if obj not in FILTER_FIELDS or not ok_attr or not ok_op:
            raise errors.invalid_param(
                f"Filtering field '{fld}' with operation '{op}' is not supported"
            )
        value = item.get("value")
        values = tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)
        out.append(Filter(fld, op, values))
    return tuple(out)


def parse_query(
    params: Mapping[str, Any],
    account: Account,
    root_kind: str,
    root_id: str,
    now: datetime,
) -> InsightsQuery:
    """Validate insights parameters like Meta does; raises GraphError."""
    today = account.today(now)
    level = str(params.get("level") or root_kind)
    if level not in LEVELS:
        raise errors.invalid_param(
            "level must be one of the following values: ad, adset, campaign, account"
        )
    if LEVEL_RANK[level] > LEVEL_RANK[root_kind]:
        raise errors.invalid_param(f"level {level} is not valid for a {root_kind} node")
    fields = parse_list(params.get("fields"), "fields") or list(DEFAULT_FIELDS)
    for i, f in enumerate(fields):
        if f not in FIELD_KIND and f not in ALL_FIELDS:
            raise errors.invalid_param(
                f"fields[{i}] must be one of the following values: {', '.join(ACCEPTED_FIELDS)}"
            )
    if params.get("time_ranges"):
        raw = parse_json(params["time_ranges"], "time_ranges")
        if not isinstance(raw, list) or not raw:
            raise errors.invalid_param("Param time_ranges must be a non-empty array")
        ranges = tuple(_parse_range(r, f"time_ranges[{i}]") for i, r in enumerate(raw))
    elif params.get("time_range"):
        ranges = (_parse_range(params["time_range"], "time_range"),)
    else:
        preset = str(params.get("date_preset") or "last_30d")
        if preset not in DATE_PRESETS:
            raise errors.invalid_param(
                f"date_preset must be one of the following values: {', '.join(DATE_PRESETS)}"
            )
        ranges = (_preset_range(preset, today),)
    oldest = months_back(today, 37)
    if any(since <= oldest for since, _ in ranges):
        raise errors.start_too_old()
    inc = str(params.get("time_increment") or "all_days")
    if inc not in ("monthly", "all_days") and not (inc.isdigit() and 1 <= int(inc) <= 90):
        raise errors.invalid_param(
            "time_increment must be an integer between 1 and 90, 'monthly' or 'all_days'"
        )
    breakdowns = parse_list(params.get("breakdowns"), "breakdowns")
    for i, b in enumerate(breakdowns):
        if b not in SUPPORTED_BREAKDOWNS:
            raise errors.invalid_param(
                f"breakdowns[{i}] must be one of the following values: "
                + ", ".join(SUPPORTED_BREAKDOWNS)
            )
    if len(set(breakdowns)) != len(breakdowns):
        raise errors.invalid_param("breakdowns must not repeat a value")
    if breakdowns and any(is_reach_related(f) for f in fields):
        limit = months_back(today, REACH_MONTHS)
        if any(since < limit for since, _ in ranges):
            raise errors.invalid_param(
                "Reach-related metric breakdowns are unavailable for time ranges older than "
                "13 months",
                subcode=2446289,
            )
    action_breakdowns = parse_list(params.get("action_breakdowns"), "action_breakdowns")
    for i, ab in enumerate(action_breakdowns):
        if ab not in ACTION_BREAKDOWNS:
            raise errors.invalid_param(
                f"action_breakdowns[{i}] must be one of the following values: "
                + ", ".join(ACTION_BREAKDOWNS)
            )
    windows = parse_list(params.get("action_attribution_windows"), "action_attribution_windows")
    for i, w in enumerate(windows):
        if w not in WINDOW_NAMES + EXTRA_WINDOWS:
            raise errors.invalid_param(
                f"action_attribution_windows[{i}] must be one of the following values: "
                + ", ".join(WINDOW_NAMES + EXTRA_WINDOWS)
            )
    art = str(params.get("action_report_time") or "impression")
    if art not in ACTION_REPORT_TIMES:
        raise errors.invalid_param(
            "action_report_time must be one of the following values: "
            + ", ".join(ACTION_REPORT_TIMES)
        )
    return InsightsQuery(
        account_id=account.id,
        level=level,
        fields=tuple(dict.fromkeys(fields)),
        ranges=ranges,
        time_increment=inc,
        breakdowns=tuple(breakdowns),
        windows=tuple(dict.fromkeys(windows)),
        action_report_time=art,
        filters=_parse_filters(params.get("filtering")),
        root_kind=root_kind,
        root_id=root_id,
        action_breakdowns=tuple(dict.fromkeys(["action_type", *action_breakdowns])),
    )


def periods(since: date, until: date, increment: str) -> list[tuple[date, date]]:
    if increment == "all_days":
        return [(since, until)]
    out = []
    if increment == "monthly":
        start = since
        while start <= until:
            end = date(start.year, start.month, calendar.monthrange(start.year, start.month)[1])
            out.append((start, min(end, until)))
            start = end + timedelta(days=1)
        return out
    step = int(increment)
    start = since
    while start <= until:
        end = start + timedelta(days=step - 1)
        out.append((start, min(end, until)))
        start = end + timedelta(days=1)
    return out


def _matches(f: Filter, value: str) -> bool:
    if f.operator in ("IN", "EQUAL"):
        return value in f.values
    if f.operator in ("NOT_IN", "NOT_EQUAL"):
        return value not in f.values
    if f.operator == "CONTAIN":
        return any(v.lower() in value.lower() for v in f.values)
    return not any(v.lower() in value.lower() for v in f.values)  # NOT_CONTAIN


def ads_in_scope(world: World, account: Account, q: InsightsQuery) -> list[Ad]:
    out = []
    for ad in account.ads:
        if q.root_kind == "campaign" and ad.campaign_id != q.root_id:
            continue
        if q.root_kind == "adset" and ad.adset_id != q.root_id:
            continue
        if q.root_kind == "ad" and ad.id != q.root_id:
            continue
        objs = {
            "ad": ad,
            "adset": world.adsets[ad.adset_id],
            "campaign": world.campaigns[ad.campaign_id],
        }
        ok = True
        for f in q.filters:
            kind, _, attr = f.field.partition(".")
            if not _matches(f, str(getattr(objs[kind], attr))):
                ok = False
                break
        if ok:
            out.append(ad)
    return out


def _level_key(ad: Ad, level: str) -> str:
    if level == "ad":
        return ad.id
    if level == "adset":
        return ad.adset_id
    if level == "campaign":
        return ad.campaign_id
    return "act_" + ad.account_id


def _parent_reach(
    seed: int, key: str, day: date, cell: tuple, total: int, top: int, imp: int
) -> int:
    """Reach of a parent on one day: below the children's sum (people overlap), deterministic."""
    factor = 0.78 + 0.17 * unit(seed, "reach", key, day.toordinal(), *cell)
    return max(top, min(imp, int(total * factor)))


def _period_reach(reaches: list[int], imp: int) -> int:
    """Reach over several days: people seen on several days count once."""
    if len(reaches) == 1:
        return reaches[0]
    dedup = 1.0 / (1.0 + 0.35 * math.log(len(reaches)))
    return max(max(reaches), min(imp, int(sum(reaches) * dedup)))


def _num(x: float) -> str:
    return f"{x:.6f}"


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def compile_action_formatter(
    windows: tuple[str, ...], values: bool
) -> Callable[[list[int]], list[dict[str, str]]]:
    """Build a specialised function turning a vector into Meta's `actions` (or
    `action_values`) list for the requested windows.

    The function body is generated as straight-line code with dict literals: formatting is the
    hot path of big jobs (tens of thousands of rows), and this is ~3x faster than generic loops.
    Items appear only for action types with a non-zero 28-day count; `value` is 7d_click +
    1d_view; `dda` equals `value`; `1d_ev` is 0.
    """
    fmt = "_money" if values else "str"
    lines = ["def fmt_actions(v):", "    out = []"]

    def window_expr(base: int, w: str) -> str:
        if w == "dda":
            return f"{fmt}(v[{base + 1}] + v[{base + 3}])"
        if w == "1d_ev":
            return f"{fmt}(0)"
        return f"{fmt}(v[{base + WINDOW_NAMES.index(w)}])"

    if not values:
        for t, slot in (("link_click", ILC), ("landing_page_view", LPV)):
            entries = [f'"action_type": "{t}"', '"value": n']
            for w in windows:
                click = w.endswith("_click") or w == "dda"
                entries.append(f'"{w}": ' + ("n" if click else '"0"'))
            lines += [f"    if v[{slot}]:", f"        n = str(v[{slot}])"]
            lines.append("        out.append({" + ", ".join(entries) + "})")
        bases = [(t, CONV0 + 6 * k) for k, t in enumerate(CONVERSION_TYPES)]
    else:
        bases = [("purchase", PVAL0)]
    for t, base in bases:
        entries = [f'"action_type": "{t}"', f'"value": {fmt}(v[{base + 1}] + v[{base + 3}])']
        entries += [f'"{w}": {window_expr(base, w)}' for w in windows]
        lines.append(f"    if v[{base + 2}] or v[{base + 5}]:")
        lines.append("        out.append({" + ", ".join(entries) + "})")
    lines.append("    return out")
    namespace: dict[str, Any] = {"_money": _money}
    exec("\n".join(lines), namespace)  # generated from constants and validated window names
    return namespace["fmt_actions"]


class RowFormatter:
    """Turns (object, period, cell, vector) into Meta's JSON row shape."""

    def __init__(self, world: World, account: Account, q: InsightsQuery) -> None:
        self.q = q
        self.world = world
        self.account = account
        self.fields = set(q.fields)
        self._ident: dict[str, dict[str, str]] = {}
        self._row = compile_row_formatter(
            q.fields,
            q.breakdowns,
            q.windows,
            level=q.level,
            action_breakdowns=q.action_breakdowns,
            account_digits=account.account_id,
        )
        self._dates: dict[tuple[date, date], tuple[str, str]] = {}

    def ident(self, key: str) -> dict[str, str]:
        hit = self._ident.get(key)
        if hit is not None:
            return hit
        w, level, a = self.world, self.q.level, self.account
        values: dict[str, str] = {
            "account_id": a.account_id,
            "account_name": a.name,
            "account_currency": a.currency,
        }
        campaign = adset = ad = None
        if level == "ad":
            ad = w.ads[key]
            adset, campaign = w.adsets[ad.adset_id], w.campaigns[ad.campaign_id]
        elif level == "adset":
            adset = w.adsets[key]
            campaign = w.campaigns[adset.campaign_id]
        elif level == "campaign":
            campaign = w.campaigns[key]
        if campaign:
            values.update(
                campaign_id=campaign.id,
                campaign_name=campaign.name,
                objective=campaign.objective,
                buying_type=campaign.buying_type,
            )
        if adset:
            values.update(
                adset_id=adset.id, adset_name=adset.name, optimization_goal=adset.optimization_goal
            )
        if ad:
            values.update(ad_id=ad.id, ad_name=ad.name)
        out = {f: values[f] for f in ALL_FIELDS if f in self.fields and f in values}
        self._ident[key] = out
        return out

    def row(
        self, key: str, period: tuple[date, date], cell: tuple[str, ...], vec: list[int]
    ) -> dict[str, Any]:
        dates = self._dates.get(period)
        if dates is None:
            dates = self._dates[period] = (period[0].isoformat(), period[1].isoformat())
        ident = self._ident.get(key)
        if ident is None:
            ident = self.ident(key)
        return self._row(ident, dates[0], dates[1], cell, vec)


# Metric fields: (condition on the vector or None, expression), generated into row code.
_METRIC_CODE = {
    "impressions": (None, "str(v[0])"),
    "reach": (None, "str(v[1])"),
    "frequency": ("v[1]", "f'{v[0] / v[1]:.6f}'"),
    "clicks": (None, "str(v[2])"),
    "inline_link_clicks": (None, "str(v[3])"),
    "spend": (None, "_money(v[4])"),
    "ctr": ("v[0]", "f'{v[2] * 100.0 / v[0]:.6f}'"),
    "cpc": ("v[2]", "f'{v[4] / 100.0 / v[2]:.6f}'"),
    "cpm": ("v[0]", "f'{v[4] * 10.0 / v[0]:.6f}'"),
    "cpp": ("v[1]", "f'{v[4] * 10.0 / v[1]:.6f}'"),
    "inline_link_click_ctr": ("v[0]", "f'{v[3] * 100.0 / v[0]:.6f}'"),
    "cost_per_inline_link_click": ("v[3]", "f'{v[4] / 100.0 / v[3]:.6f}'"),
}


def _cost_per_action(actions: list[dict[str, str]], spend: int) -> list[dict[str, str]]:
    out = []
    for item in actions:
        n = int(item["value"])
        if n:
            keys = {k: v for k, v in item.items() if k == "action_type" or k in ACTION_BREAKDOWNS}
            out.append({**keys, "value": _num(spend / 100.0 / n)})
    return out


def compile_row_formatter(
    fields: tuple[str, ...],
    breakdowns: tuple[str, ...],
    windows: tuple[str, ...],
    *,
    level: str = "ad",
    action_breakdowns: tuple[str, ...] = ("action_type",),
    account_digits: str = "",
) -> Callable[..., dict[str, Any]]:
    """Build `row(ident, date_start, date_stop, cell, v)` for the requested fields.

    Straight-line generated code (see compile_action_formatter): the row builder runs once per
    output row. Ratios are omitted when their denominator is 0, empty action lists are omitted.
    """
    lines = ["def make_row(ident, date_start, date_stop, cell, v):", "    row = ident.copy()"]
    extras: dict[str, Any] = {}
    for name in fields:
        if name in _METRIC_CODE:
            cond, expr = _METRIC_CODE[name]
            if cond:
                lines.append(f"    if {cond}:")
                lines.append(f"        row['{name}'] = {expr}")
            else:
                lines.append(f"    row['{name}'] = {expr}")
        elif name in ("actions", "cost_per_action_type"):
            if "_a = " not in "\n".join(lines):
                lines.append("    _a = expand_actions(fmt_actions(v))")
            if name == "actions":
                lines += ["    if _a:", "        row['actions'] = _a"]
            else:
                lines += [
                    "    _c = cost_per_action(_a, v[4])",
                    "    if _c:",
                    "        row['cost_per_action_type'] = _c",
                ]
        elif name == "action_values":
            lines += [
                "    _av = expand_values(fmt_values(v))",
                "    if _av:",
                "        row['action_values'] = _av",
            ]
        elif name == "attribution_setting":
            lines.append("    row['attribution_setting'] = '7d_click_1d_view'")
        elif name in FIELD_KIND and name not in ALL_FIELDS:
            fn = extra_field(name, level, FIELD_KIND[name])
            if fn is not None:
                extras[f"extra_{name}"] = fn
                lines += [
                    f"    _x = extra_{name}(v, ident, date_start)",
                    "    if _x is not None:",
                    f"        row['{name}'] = _x",
                ]
    lines += ["    row['date_start'] = date_start", "    row['date_stop'] = date_stop"]
    for i, dim in enumerate(breakdowns):
        lines.append(f"    row['{dim}'] = cell[{i}]")
    lines.append("    return row")
    namespace: dict[str, Any] = {
        "_money": _money,
        "fmt_actions": compile_action_formatter(windows, values=False),
        "fmt_values": compile_action_formatter(windows, values=True),
        "cost_per_action": _cost_per_action,
        "expand_actions": _identity,
        "expand_values": _identity,
        **extras,
    }
    if len(action_breakdowns) > 1:
        namespace["expand_actions"] = compile_expander(action_breakdowns, account_digits, False)
        namespace["expand_values"] = compile_expander(action_breakdowns, account_digits, True)
    exec("\n".join(lines), namespace)  # generated from validated field names only
    return namespace["make_row"]


def _identity(items: list[dict[str, str]]) -> list[dict[str, str]]:
    return items


Item = tuple[str, tuple[date, date], tuple[str, ...], list[int]]


class QueryResult(Sequence[dict[str, Any]]):
    """A query's result kept compact: (object key, period, cell, vector) per row.

    Rows are formatted when sliced (pages), so a year of ad-level rows held by a finished job
    costs little memory. Indexing and slicing return Meta-shaped row dicts.
    """

    def __init__(self, formatter: RowFormatter, items: list[Item]) -> None:
        self.formatter = formatter
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        row = self.formatter.row
        if isinstance(index, slice):
            return [row(*item) for item in self.items[index]]
        return row(*self.items[index])

    def all_rows(self) -> list[dict[str, Any]]:
        return self[:]


def compute(world: World, store: MetricsStore, q: InsightsQuery, now: datetime) -> QueryResult:
    """All rows of the query, in Meta's stable order (period, object id, breakdown cell)."""
    account = world.accounts[q.account_id]
    ads = ads_in_scope(world, account, q)
    fmt = RowFormatter(world, account, q)
    today = account.today(now)
    level, dims = q.level, q.breakdowns
    rows: list[Item] = []
    keys = {ad.id: _level_key(ad, level) for ad in ads}
    sorted_ids = sorted(keys)
    weights = {ad.id: store.cell_weights(account, ad, dims) for ad in ads} if dims else {}
    for since, until in q.ranges:
        for period in periods(since, until, q.time_increment):
            if period[0] > today:
                continue
            if level == "ad" and not dims and period[0] == period[1]:
                # Fast path: one ad-day per row, no aggregation needed.
                vectors = store.day_vectors(account, period[0], now)
                for ad_id in sorted_ids:
                    vec = vectors.get(ad_id)
                    if vec is not None:
                        rows.append((ad_id, period, (), vec))
                continue
            # (key, cell) -> [vector, list of daily reaches]
            acc: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
            for day in days_between(period[0], min(period[1], today)):
                vectors = store.day_vectors(account, day, now)
                if not vectors:
                    continue
                daily: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
                for ad in ads:
                    vec = vectors.get(ad.id)
                    if vec is None:
                        continue
                    if dims:
                        cells = weights[ad.id]
                        parts = split_vector(vec, [w for _, w in cells])
                        pairs = [(c[0], p) for c, p in zip(cells, parts, strict=True) if p[IMP]]
                    else:
                        pairs = [((), vec)]
                    key = keys[ad.id]
                    for cell, part in pairs:
                        slot = daily.get((key, cell))
                        if slot is None:
                            daily[(key, cell)] = [list(part), part[REACH], 1]
                        else:
                            v = slot[0]
                            for i in range(VECTOR_LEN):
                                v[i] += part[i]
                            slot[1] = max(slot[1], part[REACH])
                            slot[2] += 1
                for (key, cell), (vec, top, n) in daily.items():
                    if n > 1:
                        vec[REACH] = _parent_reach(
                            world.seed, key, day, cell, vec[REACH], top, vec[IMP]
                        )
                    slot = acc.get((key, cell))
                    if slot is None:
                        acc[(key, cell)] = [vec, [vec[REACH]]]
                    else:
                        total = slot[0]
                        for i in range(VECTOR_LEN):
                            total[i] += vec[i]
                        slot[1].append(vec[REACH])
            if dims:
                order = sorted(acc, key=lambda kc: (kc[0], _cell_rank(account, dims, kc[1])))
            else:
                order = sorted(acc)
            for key, cell in order:
                vec, reaches = acc[(key, cell)]
                vec[REACH] = _period_reach(reaches, vec[IMP])
                rows.append((key, period, cell, vec))
    return QueryResult(fmt, rows)


def _cell_rank(account: Account, dims: tuple[str, ...], cell: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(breakdown_values(account, d).index(v) for d, v in zip(dims, cell, strict=True))


def truth_query(
    account: Account,
    level: str,
    since: date,
    until: date,
    breakdowns: tuple[str, ...] = (),
    windows: tuple[str, ...] = (),
    fields: tuple[str, ...] | None = None,
) -> InsightsQuery:
    """The query behind /__sandbox/truth: per-day rows with every id/name of the level."""
    if level not in LEVELS:
        raise ValueError(f"bad level {level}")
    if fields is None:
        ident = [f for lvl in LEVELS[::-1][: 4 - LEVEL_RANK[level]] for f in ID_FIELDS[lvl]]
        ident = [f for f in ident if f not in ("objective", "buying_type", "optimization_goal")]
        fields = (*ident, *TRUTH_METRICS)
    return InsightsQuery(
        account_id=account.id,
        level=level,
        fields=fields,
        ranges=((since, until),),
        time_increment="1",
        breakdowns=breakdowns,
        windows=windows,
        action_report_time="impression",
        filters=(),
        root_kind="account",
        root_id=account.id,
    )
