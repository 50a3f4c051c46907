"""Calendar arithmetic: months and the oldest day Meta serves."""

from __future__ import annotations

import datetime as dt

from tap_meta_insights.graph_api import MAX_MONTHS_BACK


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day ``months`` later (clamped to the month's last day)."""
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    month += 1
    last = _month_last_day(year, month)
    return dt.date(year, month, min(day.day, last))


def _month_last_day(year: int, month: int) -> int:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


def earliest_allowed(today: dt.date) -> dt.date:
    """Oldest day Meta serves insights for: 37 months back."""
    return add_months(today, -MAX_MONTHS_BACK) + dt.timedelta(days=1)
