"""Calendar arithmetic the CLI needs: months, and the oldest day Meta serves insights for.

The tap has its own (a separate program: nothing is imported across); tests/test_cli_inputs.py
checks that both agree on Meta's horizon.
"""

from __future__ import annotations

import calendar
import datetime as dt

#: Meta serves insights for the last 37 months (see META_API_NOTES.md).
MAX_MONTHS_BACK = 37


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (or earlier), clamped to the month's last day."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def earliest_allowed(today: dt.date) -> dt.date:
    """The oldest day Meta serves insights for on ``today``."""
    return add_months(today, -MAX_MONTHS_BACK) + dt.timedelta(days=1)
