"""Late attribution: the last 28 days keep changing as the clock moves; older days are frozen."""

from __future__ import annotations

from datetime import date, timedelta

from sandbox_support import ACT

WINDOWS = ["1d_click", "7d_click", "28d_click", "1d_view", "7d_view", "28d_view"]


def by_key(rows):
    return {(r["ad_id"], r["date_start"]): r for r in rows}


def test_clock_plus_one_day_changes_only_the_last_28_days(fresh):
    today = date(2026, 11, 28)  # world now: 2026-11-28T12:00Z, Stockholm
    since, until = (today - timedelta(days=60)).isoformat(), today.isoformat()
    before = by_key(fresh.truth(ACT, "ad", since, until, windows=WINDOWS))
    fresh.advance_clock(days=1)
    after = by_key(fresh.truth(ACT, "ad", since, until, windows=WINDOWS))
    frozen_until = today - timedelta(days=27)
    changed_days = set()
    for key, row in before.items():
        day = date.fromisoformat(key[1])
        new = after[key]
        if day <= frozen_until:
            assert new == row, f"frozen day {day} changed"
        elif new != row:
            changed_days.add(day)
            # conversions only grow
            old_actions = {a["action_type"]: a for a in row.get("actions", [])}
            for item in new.get("actions", []):
                old = old_actions.get(item["action_type"], {})
                for w in WINDOWS:
                    assert int(item[w]) >= int(old.get(w, 0))
    assert changed_days, "recent days must change"
    assert min(changed_days) > frozen_until
    assert today in changed_days  # today's partial delivery completes
    assert set(after) >= set(before)
    # the new day appears once it is part of the range
    new_day = (today + timedelta(days=1)).isoformat()
    assert fresh.truth(ACT, "ad", new_day, new_day)


def test_set_clock_back_restores_the_same_numbers(fresh):
    rows = fresh.truth(ACT, "campaign", "2026-11-01", "2026-11-27", windows=WINDOWS)
    fresh.advance_clock(days=5)
    assert fresh.truth(ACT, "campaign", "2026-11-01", "2026-11-27", windows=WINDOWS) != rows
    fresh.set_clock("2026-11-28T12:00:00Z")
    assert fresh.truth(ACT, "campaign", "2026-11-01", "2026-11-27", windows=WINDOWS) == rows
