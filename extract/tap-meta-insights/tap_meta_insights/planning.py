"""Date windows: planning, halving, incremental starts and contiguous bookmarks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t
from dataclasses import dataclass

from tap_meta_insights.dates import add_months, earliest_allowed
from tap_meta_insights.reports import ReportSpec

ONE_DAY = dt.timedelta(days=1)
REACH_MONTHS = 13  # Meta serves reach-related fields with breakdowns for 13 months only


@dataclass(frozen=True, order=True)
class DateRange:
    """An inclusive range of days."""

    since: dt.date
    until: dt.date

    def __post_init__(self) -> None:
        if self.since > self.until:
            msg = f"empty range {self.since}..{self.until}"
            raise ValueError(msg)

    @property
    def days(self) -> int:
        """Number of days in the range."""
        return (self.until - self.since).days + 1

    def halves(self) -> tuple[DateRange, DateRange]:
        """Split in two (the first half gets the extra day); needs at least two days."""
        if self.days < 2:
            msg = "a one-day range cannot be halved"
            raise ValueError(msg)
        mid = self.since + dt.timedelta(days=(self.days + 1) // 2 - 1)
        return DateRange(self.since, mid), DateRange(mid + ONE_DAY, self.until)

    def __str__(self) -> str:
        return f"{self.since}..{self.until}"


def plan_windows(since: dt.date, until: dt.date, chunk_months: int) -> list[DateRange]:
    """Split [since, until] into calendar windows of ``chunk_months`` months.

    Windows are aligned to calendar months counted from ``since``'s month, inclusive,
    non-overlapping, and never pass ``until``: 2024-01-15..2024-03-10 with one month gives
    01-15..01-31, 02-01..02-29, 03-01..03-10.
    """
    if chunk_months < 1:
        msg = "chunk_months must be at least 1"
        raise ValueError(msg)
    windows: list[DateRange] = []
    if since > until:
        return windows
    month_start = since.replace(day=1)
    start = since
    while start <= until:
        month_start = add_months(month_start, chunk_months)
        stop = min(month_start - ONE_DAY, until)
        windows.append(DateRange(start, stop))
        start = stop + ONE_DAY
    return windows


def incremental_start(
    *,
    start_date: dt.date,
    bookmark: dt.date | None,
    lookback_days: int,
    today: dt.date,
) -> dt.date:
    """First day to extract: the day after the bookmark minus the lookback.

    Clamped to ``start_date`` and to Meta's 37-month horizon. Without a bookmark: start_date.
    """
    start = start_date
    if bookmark is not None:
        start = max(start_date, bookmark + ONE_DAY - dt.timedelta(days=lookback_days))
    return max(start, earliest_allowed(today))


class ContiguousProgress:
    """Tracks completed windows; the bookmark only moves across a contiguous prefix.

    ``complete`` may be called in any order; the bookmark is the last day of the longest
    run of completed windows starting at the first planned window, never earlier than the
    bookmark the run started from.
    """

    def __init__(self, windows: t.Sequence[DateRange], bookmark: dt.date | None = None) -> None:
        self._windows = sorted(windows)
        self._done: set[DateRange] = set()
        self._next = 0
        self.bookmark = bookmark

    def complete(self, window: DateRange) -> dt.date | None:
        """Mark ``window`` done; return the new bookmark if it moved, else None."""
        if window not in self._windows:
            msg = f"{window} was not planned"
            raise ValueError(msg)
        self._done.add(window)
        moved = False
        while self._next < len(self._windows) and self._windows[self._next] in self._done:
            until = self._windows[self._next].until
            if self.bookmark is None or until > self.bookmark:
                self.bookmark = until
                moved = True
            self._next += 1
        return self.bookmark if moved else None


def is_reach_related(field: str) -> bool:
    """Fields Meta counts as reach (people, not impressions) and refuses with breakdowns for
    ranges starting more than 13 months back (error 100/2446289)."""
    return field in ("reach", "frequency", "cpp", "full_view_reach") or field.startswith(
        ("unique_", "cost_per_unique_")
    )


def reach_cutoff(today: dt.date) -> dt.date:
    """First day a window may start on and still ask for reach with breakdowns.

    Meta counts 13 months back from its own "today"; one day of margin keeps a run that
    starts near midnight (or in a timezone ahead of Meta's) on the safe side.
    """
    return add_months(today, -REACH_MONTHS) + ONE_DAY


def without_reach(report: ReportSpec) -> ReportSpec | None:
    """The report minus its reach-related fields, if Meta limits it to 13 months (it has
    breakdowns and asks for reach-related fields); None if the report is not limited."""
    if not report.breakdowns or not any(is_reach_related(f) for f in report.fields):
        return None
    return dataclasses.replace(
        report, fields=tuple(f for f in report.fields if not is_reach_related(f))
    )


def split_at(windows: t.Sequence[DateRange], day: dt.date) -> list[DateRange]:
    """The windows with the one containing ``day`` (not starting on it) cut before ``day``."""
    out: list[DateRange] = []
    for w in windows:
        if w.since < day <= w.until:
            out += [DateRange(w.since, day - ONE_DAY), DateRange(day, w.until)]
        else:
            out.append(w)
    return out
