"""The ``reports`` setting: one insights report (one stream) each, and their defaults."""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

from singer_sdk import typing as th

from tap_meta_insights.errors import SettingError
from tap_meta_insights.graph_api import (
    ALL_OBJECT_FIELDS,
    ATTRIBUTION_WINDOWS,
    LEVEL_OBJECT_FIELDS,
    LEVELS,
    REPORT_TIMES,
)
from tap_meta_insights.list_setting import parse_list_setting

# What a report asks for unless it says otherwise (the default reports ask for just this).
DEFAULT_WINDOWS = ("1d_view", "7d_click", "28d_click")
DEFAULT_REPORT_TIME = "mixed"
COMMON_FIELDS = (
    "account_id",
    "account_name",
    "account_currency",
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

_REPORT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,50}$")


@dataclass(frozen=True)
class ReportSpec:
    """One insights report (one stream): a level plus what to ask Meta for."""

    name: str
    level: str
    fields: tuple[str, ...]
    breakdowns: tuple[str, ...] = ()
    action_breakdowns: tuple[str, ...] = ("action_type",)
    action_attribution_windows: tuple[str, ...] = DEFAULT_WINDOWS
    action_report_time: str = DEFAULT_REPORT_TIME

    @property
    def stream_name(self) -> str:
        """The Singer stream name."""
        return f"insights_{self.name}"

    @property
    def object_id_field(self) -> str:
        """``ad_id`` etc., or ``account_id`` at account level."""
        return f"{self.level}_id"

    @property
    def request_fields(self) -> tuple[str, ...]:
        """Fields sent to Meta: the report's fields plus the level's ids, minus lower levels."""
        allowed_objects = set(LEVEL_OBJECT_FIELDS[self.level])
        wanted = [f for f in self.fields if f not in ALL_OBJECT_FIELDS or f in allowed_objects]
        for required in ("account_id", *LEVEL_OBJECT_FIELDS[self.level][-2:]):
            if required not in wanted:
                wanted.append(required)
        return tuple(dict.fromkeys(wanted))


def default_reports() -> list[dict]:
    """The default ``reports``: ad, adset and campaign level delivery and conversions."""
    return [
        {
            "name": level,
            "level": level,
            "fields": [*COMMON_FIELDS, *LEVEL_OBJECT_FIELDS[level]],
            "breakdowns": [],
            "action_breakdowns": ["action_type"],
            "action_attribution_windows": list(DEFAULT_WINDOWS),
            "action_report_time": DEFAULT_REPORT_TIME,
        }
        for level in ("ad", "adset", "campaign")
    ]


REPORT_TYPE = th.ObjectType(
    th.Property(
        "name", th.StringType, required=True, description="Report name; stream insights_<name>."
    ),
    th.Property(
        "level",
        th.StringType(allowed_values=list(LEVELS)),
        required=True,
        description="ad, adset, campaign or account.",
    ),
    th.Property("fields", th.ArrayType(th.StringType), description="Insights fields."),
    th.Property(
        "breakdowns", th.ArrayType(th.StringType), description="e.g. age, gender, country."
    ),
    th.Property(
        "action_breakdowns", th.ArrayType(th.StringType), description="Default [action_type]."
    ),
    th.Property(
        "action_attribution_windows",
        th.ArrayType(th.StringType),
        description="Default [1d_view, 7d_click, 28d_click].",
    ),
    th.Property(
        "action_report_time",
        th.StringType,
        description="impression, conversion, mixed (default) or lifetime.",
    ),
)


def _str_list(report: str, key: str, value: t.Any) -> tuple[str, ...]:
    items = parse_list_setting(f"reports[{report}].{key}", value)
    if not all(isinstance(i, str) and i.strip() for i in items):
        raise SettingError(f"reports[{report}].{key}: expected a list of names.")
    return tuple(dict.fromkeys(i.strip() for i in items))


def parse_reports(value: t.Any) -> tuple[ReportSpec, ...]:
    """Validate the ``reports`` setting (default: ad, adset, campaign)."""
    raw = parse_list_setting("reports", value) if value not in (None, "", []) else []
    if not raw:
        raw = default_reports()
    specs: list[ReportSpec] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise SettingError(f"reports[{index}]: expected an object with name and level.")
        name = str(item.get("name") or "").strip()
        if not _REPORT_NAME_RE.match(name) or name == "windows":
            raise SettingError(
                f"reports[{index}].name: {name!r} must be lowercase letters, digits and _ "
                "(and not 'windows'); it names the stream insights_<name>."
            )
        level = str(item.get("level") or "").strip()
        if level not in LEVELS:
            raise SettingError(
                f"reports[{name}].level: {level!r} must be one of {', '.join(LEVELS)}."
            )
        fields = _str_list(name, "fields", item.get("fields")) or (
            *COMMON_FIELDS,
            *LEVEL_OBJECT_FIELDS[level],
        )
        windows = _str_list(
            name, "action_attribution_windows", item.get("action_attribution_windows")
        )
        for window in windows:
            if window not in ATTRIBUTION_WINDOWS:
                raise SettingError(
                    f"reports[{name}].action_attribution_windows: {window!r} is not one of "
                    f"{', '.join(ATTRIBUTION_WINDOWS)}."
                )
        report_time = str(item.get("action_report_time") or DEFAULT_REPORT_TIME).strip()
        if report_time not in REPORT_TIMES:
            raise SettingError(
                f"reports[{name}].action_report_time: {report_time!r} must be one of "
                f"{', '.join(REPORT_TIMES)}."
            )
        action_breakdowns = item.get("action_breakdowns")
        specs.append(
            ReportSpec(
                name=name,
                level=level,
                fields=fields,
                breakdowns=_str_list(name, "breakdowns", item.get("breakdowns")),
                action_breakdowns=(
                    ("action_type",)
                    if action_breakdowns is None
                    else _str_list(name, "action_breakdowns", action_breakdowns)
                ),
                action_attribution_windows=windows or DEFAULT_WINDOWS,
                action_report_time=report_time,
            )
        )
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SettingError(f"reports: names must be unique; repeated: {', '.join(duplicates)}.")
    return tuple(specs)
