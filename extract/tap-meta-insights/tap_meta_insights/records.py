"""Insights record schemas and the row → record transformation (CONTRACTS.md)."""

from __future__ import annotations

import math
import typing as t

from tap_meta_insights.graph_api import ALL_OBJECT_FIELDS
from tap_meta_insights.reports import ReportSpec

INTEGER_FIELDS = frozenset(
    {
        "impressions",
        "reach",
        "clicks",
        "inline_link_clicks",
        "unique_clicks",
        "unique_inline_link_clicks",
        "inline_post_engagement",
        "full_view_impressions",
        "full_view_reach",
        "estimated_ad_recallers",
        "unique_link_clicks",
    }
)
NUMBER_FIELDS = frozenset(
    {
        "spend",
        "frequency",
        "ctr",
        "cpc",
        "cpm",
        "cpp",
        "unique_ctr",
        "inline_link_click_ctr",
        "unique_inline_link_click_ctr",
        "cost_per_inline_link_click",
        "cost_per_inline_post_engagement",
        "cost_per_unique_click",
        "cost_per_unique_inline_link_click",
        "cost_per_estimated_ad_recallers",
        "social_spend",
        "unique_link_clicks_ctr",
        "estimated_ad_recall_rate",
    }
)
ACTION_LIST_FIELDS = frozenset(
    {
        "actions",
        "action_values",
        "conversions",
        "conversion_values",
        "cost_per_action_type",
        "cost_per_conversion",
        "cost_per_unique_action_type",
        "unique_actions",
        "outbound_clicks",
        "outbound_clicks_ctr",
        "unique_outbound_clicks",
        "cost_per_outbound_click",
        "website_ctr",
        "purchase_roas",
        "website_purchase_roas",
        "mobile_app_purchase_roas",
        "cost_per_thruplay",
    }
)
# Columns every insights record has, whatever the report asks for (CONTRACTS.md).
CONTRACT_STRING_COLUMNS = ("account_name", "account_currency", *ALL_OBJECT_FIELDS)
SKIPPED_FIELDS = frozenset({"account_id", "date_start", "date_stop"})


def field_kind(name: str) -> str:
    """integer, number, actions or string."""
    if name in INTEGER_FIELDS:
        return "integer"
    if name in NUMBER_FIELDS:
        return "number"
    if name in ACTION_LIST_FIELDS or name.endswith(("_actions", "_roas")):
        return "actions"
    return "string"


def _nullable(type_name: str, **extra: t.Any) -> dict:
    return {"type": [type_name, "null"], **extra}


def action_item_schema(report: ReportSpec) -> dict:
    """Schema of one actions/action_values item: type, value, one key per window."""
    props: dict[str, dict] = {"action_type": _nullable("string"), "value": _nullable("number")}
    for window in report.action_attribution_windows:
        props[window] = _nullable("number")
    for breakdown in report.action_breakdowns:
        props.setdefault(breakdown, _nullable("string"))
    return {"type": "object", "properties": props, "additionalProperties": True}


def insights_schema(report: ReportSpec) -> dict:
    """JSON schema of an ``insights_<report>`` stream."""
    props: dict[str, dict] = {
        "tenant_id": {"type": "string"},
        "account_id": {"type": "string"},
        "date": {"type": "string", "format": "date"},
        "level": {"type": "string"},
        "report_name": {"type": "string"},
        "action_report_time": {"type": "string"},
        "attribution_windows": {"type": "array", "items": {"type": "string"}},
        "breakdowns": {
            "type": "object",
            "properties": {b: {"type": "string"} for b in report.breakdowns},
            "additionalProperties": True,
        },
    }
    for column in CONTRACT_STRING_COLUMNS:
        props[column] = _nullable("string")
    for name in report.request_fields:
        if name in SKIPPED_FIELDS or name in props:
            continue
        kind = field_kind(name)
        if kind == "actions":
            props[name] = {"type": ["array", "null"], "items": action_item_schema(report)}
        else:
            props[name] = _nullable(kind)
    for metric in ("actions", "action_values"):
        props.setdefault(metric, {"type": ["array", "null"], "items": action_item_schema(report)})
    for breakdown in report.breakdowns:
        props[breakdown] = {"type": "string"}
    props[report.object_id_field] = {"type": "string"}
    return {"type": "object", "properties": props}


def key_properties(report: ReportSpec) -> list[str]:
    """``[tenant_id, account_id, date, <level>_id]`` + breakdown columns.

    At account level there is no object id. The tenant comes first: one ad account can be
    listed under several tenants (an agency and its client), each with its own rows.
    """
    keys = ["tenant_id", "account_id", "date"]
    if report.level != "account":
        keys.append(report.object_id_field)
    return keys + list(report.breakdowns)


def parse_integer(value: t.Any) -> int | None:
    """Meta's "123" → 123 (and "12.0" → 12); junk → None."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        number = parse_number(value)
        return None if number is None else int(number)


def parse_number(value: t.Any) -> float | int | None:
    """Meta's "12.34" → 12.34; integral strings stay ints; junk → None."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    try:
        return int(value)
    except (TypeError, ValueError):
        pass
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parse_actions(items: t.Any, report: ReportSpec) -> list[dict] | None:
    """Numbers in every numeric key of each action item; every requested window kept."""
    if items is None:
        return None
    if not isinstance(items, list):
        return None
    text_keys = {"action_type", *report.action_breakdowns}
    parsed = []
    for item in items:
        if not isinstance(item, dict):
            continue
        out: dict[str, t.Any] = {}
        for key, value in item.items():
            out[key] = value if key in text_keys else parse_number(value)
        parsed.append(out)
    return parsed


class MissingKeyError(ValueError):
    """A row lacks a key column Meta should always return."""


def build_record(
    row: t.Mapping[str, t.Any],
    report: ReportSpec,
    *,
    account_id: str,
    tenant_id: str,
) -> dict:
    """One Meta insights row → one record of the contract."""
    date = row.get("date_start")
    if not date:
        raise MissingKeyError("date_start")
    breakdowns = {b: _breakdown_value(row.get(b)) for b in report.breakdowns}
    record: dict[str, t.Any] = {
        "tenant_id": tenant_id,
        "account_id": account_id,
        "date": str(date)[:10],
        "level": report.level,
        "report_name": report.name,
        "action_report_time": report.action_report_time,
        "attribution_windows": list(report.action_attribution_windows),
        "breakdowns": breakdowns,
    }
    for column in CONTRACT_STRING_COLUMNS:
        value = row.get(column)
        record[column] = None if value is None else str(value)
    for name in report.request_fields:
        if name in SKIPPED_FIELDS or name in CONTRACT_STRING_COLUMNS:
            continue
        kind = field_kind(name)
        value = row.get(name)
        if kind == "integer":
            record[name] = parse_integer(value)
        elif kind == "number":
            record[name] = parse_number(value)
        elif kind == "actions":
            record[name] = parse_actions(value, report)
        else:
            record[name] = (
                None if value is None else (value if isinstance(value, str) else str(value))
            )
    for metric in ("actions", "action_values"):
        record.setdefault(metric, None)
    record.update(breakdowns)
    if report.level != "account" and not record.get(report.object_id_field):
        raise MissingKeyError(report.object_id_field)
    return record


def record_key(record: t.Mapping[str, t.Any], report: ReportSpec) -> tuple:
    """The stream key of a record (for de-duplication)."""
    return tuple(record.get(k) for k in key_properties(report))


def _breakdown_value(value: t.Any) -> str:
    # Keys are never null: a missing breakdown value becomes "unknown", as Meta itself
    # reports unknown ages and genders.
    if value is None or value == "":
        return "unknown"
    return str(value)
