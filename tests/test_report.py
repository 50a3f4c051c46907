"""The report's day states and time zones (no database, no browser)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from meta_elt import report

D = dt.date


def _day(day: dt.date, delivered: bool = True) -> report.Day:
    spend = Decimal(10) if delivered else Decimal(0)
    return report.Day(day, spend, Decimal(1), Decimal(5), int(delivered), int(delivered), delivered)


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def test_today_is_the_accounts_own_day():
    now = dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)
    assert report.Account("t", "a", None, "AUD", "Australia/Sydney").today(now) == D(2026, 12, 1)
    assert report.Account("t", "a", None, "USD", "America/Los_Angeles").today(now) == D(
        2026, 11, 30
    )
    assert report.Account("t", "a", None, "EUR", None).today(now) == D(2026, 11, 30)
    assert report.Account("t", "a", None, "EUR", "Not/AZone").today(now) == D(2026, 11, 30)


def test_day_states_follow_the_coverage_rule():
    account = report.Account("t", "act_1", "Shop", "SEK", "Europe/Stockholm")
    key = ("t", "act_1")
    today = D(2026, 11, 30)
    synced = set(_days(D(2026, 9, 1), today)) - {D(2026, 9, 20)}  # a day no sync covered
    rows = [_day(d, delivered=d != D(2026, 9, 10)) for d in sorted(synced) if d != D(2026, 9, 12)]
    data = report.ReportData([account], {key: rows})
    for level in report.LEVELS:
        data.synced_days[(*key, level)] = set(synced)
        data.level_days[(*key, level)] = {r.date for r in rows}
    data.level_days[(*key, "adset")].discard(D(2026, 9, 14))  # delivered, no adset rows
    data.level_days[(*key, "ad")].discard(D(2026, 9, 10))  # no delivery: no ad rows expected

    states = report.day_states(data, account, today)

    assert min(states) == D(2026, 9, 1) and max(states) == today
    assert states[D(2026, 9, 2)][0] == report.DELIVERED
    assert states[D(2026, 9, 10)][0] == report.ZERO
    assert states[D(2026, 9, 12)] == (report.MISSING, "no rows at level account")
    assert states[D(2026, 9, 14)] == (report.MISSING, "no rows at level adset")
    assert states[D(2026, 9, 20)][0] == report.NOT_SYNCED
    assert states[today][0] == report.PARTIAL
    attributing = [d for d, (state, _) in states.items() if state == report.ATTRIBUTING]
    assert attributing == _days(today - dt.timedelta(days=27), today - dt.timedelta(days=1))
    assert states[today - dt.timedelta(days=28)][0] == report.DELIVERED


def test_a_missing_day_outranks_still_attributing():
    account = report.Account("t", "act_1", "Shop", "SEK", None)
    key = ("t", "act_1")
    today = D(2026, 11, 30)
    days = _days(D(2026, 11, 1), today)
    data = report.ReportData([account], {key: [_day(d) for d in days if d != D(2026, 11, 20)]})
    for level in report.LEVELS:
        data.synced_days[(*key, level)] = set(days)
        data.level_days[(*key, level)] = set(days) - {D(2026, 11, 20)}
    assert report.day_states(data, account, today)[D(2026, 11, 20)][0] == report.MISSING


def test_without_sync_windows_the_rows_are_the_synced_days():
    """A reader without the staging views: days with an account row count as synced."""
    account = report.Account("t", "act_1", None, "EUR", None)
    today = D(2026, 11, 5)
    rows = [_day(D(2026, 11, 1)), _day(D(2026, 11, 3))]
    states = report.day_states(report.ReportData([account], {("t", "act_1"): rows}), account, today)
    assert [states[d][0] for d in _days(D(2026, 11, 1), today)] == [
        report.ATTRIBUTING,
        report.NOT_SYNCED,
        report.ATTRIBUTING,
        report.NOT_SYNCED,
        report.NOT_SYNCED,  # today has no row yet
    ]
