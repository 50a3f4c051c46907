"""PollPacer: when to poll a job, against simulated jobs on a simulated clock."""

from __future__ import annotations

import math

import pytest
from tap_meta_insights.polling import FIRST_POLL_SECONDS, MIN_GAP_SECONDS, PollPacer


def linear(start: float, duration: float):
    """Meta's percentage for a job that starts at ``start`` and runs ``duration`` seconds,
    whole percent, 99 at most until it is done (as the sandbox and Meta report it)."""

    def percent(now: float) -> float | None:  # None: done
        if now >= start + duration:
            return None
        if now < start:
            return 0.0
        return float(max(1, min(99, math.floor(100 * (now - start) / duration))))

    return percent


def stepped(start: float, duration: float):
    """A job whose percentage stays at 0 until it is done (no progress information)."""

    def percent(now: float) -> float | None:
        return None if now >= start + duration else 0.0

    return percent


def run(percent_at, cap: float = 5.0) -> tuple[float, int, list[float]]:
    """Poll a job created at t=0 until it is seen done: (when, polls, waits)."""
    pacer = PollPacer(0.0, cap)
    now = pacer.first_delay()
    waits = [now]
    polls = 0
    while True:
        polls += 1
        percent = percent_at(now)
        if percent is None:
            return now, polls, waits
        wait = pacer.next_delay(now, percent)
        waits.append(wait)
        now += wait
        assert polls < 1000


def test_a_small_job_is_seen_done_at_the_first_poll() -> None:
    seen, polls, _ = run(linear(0.0, 0.3))
    assert (seen, polls) == (FIRST_POLL_SECONDS, 1)


@pytest.mark.parametrize("duration", [1.0, 3.0, 15.0, 40.0])
def test_progress_puts_the_next_poll_just_after_the_end(duration: float) -> None:
    seen, polls, _ = run(linear(0.0, duration))
    assert duration <= seen <= duration + 0.5
    assert polls <= 4 + duration / 5.0  # at most a poll per cap (5 s) while far from the end


@pytest.mark.parametrize(("queued", "duration"), [(2.0, 3.0), (10.0, 15.0), (30.0, 4.0)])
def test_a_job_queued_at_meta_is_seen_done_soon_after_it_ends(queued: float, duration: float):
    seen, polls, waits = run(linear(queued, duration))
    end = queued + duration
    assert end <= seen <= end + 0.6
    assert max(waits) <= 5.0
    assert polls <= 16


def test_without_progress_it_backs_off_up_to_the_cap() -> None:
    seen, _, waits = run(stepped(0.0, 60.0), cap=5.0)
    assert 60.0 <= seen <= 65.0
    assert waits[:3] == [FIRST_POLL_SECONDS, 0.75, 1.125]
    assert max(waits) == 5.0 and waits[-1] == 5.0


def test_waits_stay_between_the_minimum_gap_and_the_cap() -> None:
    pacer = PollPacer(0.0, cap=2.0)
    assert pacer.next_delay(0.5, 99.0) == MIN_GAP_SECONDS  # nearly done
    assert pacer.next_delay(0.75, 100.0) == MIN_GAP_SECONDS  # done, status not yet updated
    slow = PollPacer(0.0, cap=2.0)
    assert slow.next_delay(1.0, 1.0) == 2.0  # 99 s to go: capped
    tiny = PollPacer(0.0, cap=0.1)  # a cap below the minimum gap wins (tests poll fast)
    assert tiny.first_delay() == 0.1 and tiny.next_delay(0.1, 99.0) == 0.1


def test_a_freed_slot_brings_a_look_at_the_job_meta_had_queued() -> None:
    # A 2 s job queued at Meta until another job of the account ends at t=12.
    job = linear(12.0, 2.0)

    def seen_done(nudge: bool) -> float:
        pacer = PollPacer(0.0, cap=5.0)
        now, next_poll = 0.0, pacer.first_delay()
        while True:
            if nudge and now < 12.0 <= next_poll:  # the scheduler sees the other job end
                now, next_poll = 12.0, 12.0 + pacer.slot_freed(12.0)
                continue
            now = next_poll
            percent = job(now)
            if percent is None:
                return now
            next_poll = now + pacer.next_delay(now, percent)

    assert seen_done(nudge=False) > 15.0  # between two backoff polls it ran and ended unseen
    assert 14.0 <= seen_done(nudge=True) <= 14.6
    started = PollPacer(0.0, cap=5.0)
    started.next_delay(1.0, 40.0)
    assert started.started and not PollPacer(0.0, cap=5.0).started


def test_progress_says_when_the_job_probably_ended() -> None:
    pacer = PollPacer(0.0, cap=5.0)
    assert not pacer.probably_ended(100.0)  # nothing known yet
    pacer.next_delay(1.0, 25.0)  # started at creation: 4 s in all
    assert pacer.expected_end == pytest.approx(4.0)
    assert not pacer.probably_ended(3.9) and pacer.probably_ended(4.0)
    queued = PollPacer(0.0, cap=5.0)
    queued.next_delay(1.0, 0.0)  # not started at 1 s
    queued.next_delay(2.0, 30.0)  # started at some moment since: end unknown
    assert queued.expected_end is None
