"""AdaptiveJobLimit: jobs in flight per account, grown and cut by Meta's throttle readings."""

from __future__ import annotations

from tap_meta_insights.concurrency import (
    BACK_OFF_AT,
    COOL_DOWN,
    GROW_BELOW,
    START_JOBS,
    AdaptiveJobLimit,
    Reading,
)


class Account:
    """A toy Meta account: each job in flight holds ``per_job`` % of its insights capacity."""

    def __init__(self, per_job: float, other_load: float = 0.0) -> None:
        self.per_job = per_job
        self.other_load = other_load
        self.clock = 0.0

    def reading(self, in_flight: int, throttled_at: float = 0.0) -> Reading:
        self.clock += 1.0
        return Reading(self.other_load + self.per_job * in_flight, self.clock, throttled_at)


def fill(limit: AdaptiveJobLimit, account: Account, in_flight: int = 0, rounds: int = 50) -> int:
    """Start jobs as a scheduler does: one per free slot, each answered by a fresh reading."""
    for _ in range(rounds):
        value = limit.update(account.reading(in_flight), in_flight)
        if in_flight >= value:
            break
        in_flight += 1
    return in_flight


def test_it_starts_small_and_grows_while_meta_leaves_room() -> None:
    limit = AdaptiveJobLimit(ceiling=20)
    assert limit.value == START_JOBS
    # 12.5 % per job: 6 jobs = 75 % (hold), so it settles at 6 and never asks for a 7th.
    in_flight = fill(limit, Account(per_job=12.5))
    assert (in_flight, limit.value) == (6, 6)


def test_the_ceiling_caps_growth() -> None:
    limit = AdaptiveJobLimit(ceiling=3)
    assert fill(limit, Account(per_job=1.0)) == 3
    assert limit.value == 3
    assert AdaptiveJobLimit(ceiling=1).value == 1


def test_no_growth_while_the_limit_is_not_in_use_or_without_a_new_reading() -> None:
    limit = AdaptiveJobLimit(ceiling=10)
    assert limit.update(Reading(0.0, 1.0), in_flight=1) == START_JOBS  # one slot still free
    assert limit.update(Reading(0.0, 2.0), in_flight=2) == START_JOBS + 1
    # The same reading again (no response since the last change) proves nothing.
    assert limit.update(Reading(0.0, 2.0), in_flight=3) == START_JOBS + 1
    assert limit.update(Reading(0.0, 3.0), in_flight=3) == START_JOBS + 2


def test_it_holds_between_the_thresholds() -> None:
    limit = AdaptiveJobLimit(ceiling=10, start=4)
    for at in range(1, 10):
        assert limit.update(Reading(GROW_BELOW + 5, float(at)), in_flight=4) == 4


def test_a_hot_reading_halves_the_jobs_in_flight_once_per_congestion() -> None:
    limit = AdaptiveJobLimit(ceiling=10, start=8)
    assert limit.update(Reading(BACK_OFF_AT + 1, 1.0), in_flight=8) == 4
    # More hot readings while the same 8 jobs are still at Meta: they cannot be recalled,
    # so the limit is not cut again.
    assert limit.update(Reading(100.0, 2.0), in_flight=8) == 4
    # Still hot as jobs end: half of what is left.
    assert limit.update(Reading(95.0, 3.0), in_flight=5) == 2
    assert limit.update(Reading(95.0, 4.0), in_flight=1) == 1
    assert limit.update(Reading(95.0, 5.0), in_flight=0) == 1  # never below one


def test_a_throttling_error_halves_and_pauses_growth() -> None:
    limit = AdaptiveJobLimit(ceiling=10, start=6)
    assert limit.update(Reading(10.0, 100.0, throttled_at=100.0), in_flight=6) == 3
    assert "throttling" in limit.reason
    # The same error seen again is not a new one.
    assert limit.update(Reading(10.0, 101.0, throttled_at=100.0), in_flight=3) == 3
    # Room, but within the cool-down: no growth.
    assert limit.update(Reading(10.0, 100.0 + COOL_DOWN / 2, 100.0), in_flight=3) == 3
    assert limit.update(Reading(10.0, 100.0 + COOL_DOWN + 1, 100.0), in_flight=3) == 4


def test_it_recovers_when_other_load_goes_away() -> None:
    account = Account(per_job=12.5, other_load=60.0)  # another client uses the account
    limit = AdaptiveJobLimit(ceiling=8)
    in_flight = fill(limit, account)
    assert in_flight == 2  # 60 + 2 x 12.5 = 85 %: hold at the start value
    account.other_load = 0.0
    assert fill(limit, account, in_flight) == 6


def test_a_job_ended_at_meta_but_not_yet_polled_does_not_make_room_look_used() -> None:
    limit = AdaptiveJobLimit(ceiling=10, start=6)
    # 6 in flight, but one has ended at Meta: its figure (62.5 %) shows 5 jobs. That room is
    # the ended job's, not a new one's: no growth, and no room until the ended job is seen.
    assert limit.room(Reading(62.5, 1.0), in_flight=6, at_meta=5) == 0
    assert limit.value == 6
    # Counted as Meta counts them, the limit is in use and Meta leaves room: one more.
    assert limit.room(Reading(62.5, 2.0), in_flight=6, at_meta=6) == 1
    # No job starts while Meta's figure is hot, whatever the limit.
    assert limit.room(Reading(BACK_OFF_AT, 3.0), in_flight=0) == 0
