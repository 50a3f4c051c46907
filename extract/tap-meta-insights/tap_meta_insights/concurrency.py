"""How many async report jobs an ad account may have in flight: adapted to Meta's throttle.

Meta runs a few async jobs per account at once and queues the others; its
``x-fb-ads-insights-throttle`` header says how much of the account's (``acc_id_util_pct``) and
the app's (``app_id_util_pct``) insights capacity is in use, and a new job beyond it is refused
as a rate limit (80000, 4, 17, 613…). A queue of a job or two at Meta hides our polling delay
(the next job starts the moment one ends); a longer one only adds load.

So each account gets an :class:`AdaptiveJobLimit`, additive increase, multiplicative decrease
(AIMD, as TCP's congestion window):

* it starts at ``START_JOBS``;
* while the limit is in use and a reading taken after its last change leaves room (below
  ``GROW_BELOW`` %), it grows by one job: the reading of the job just started tells whether
  the next one fits;
* from ``GROW_BELOW`` to ``BACK_OFF_AT`` % it holds;
* at ``BACK_OFF_AT`` % or more, or when Meta answers a throttling error, it falls to half the
  jobs in flight (at least one); after a throttling error it does not grow for ``COOL_DOWN``
  seconds; and while the latest figure is that high no job starts at all;
* it never exceeds the ceiling, ``max_concurrent_jobs`` (run-wide, enforced by the scheduler).

Pure logic: the scheduler feeds it :class:`Reading` values and the account's jobs in flight.
"""

from __future__ import annotations

from dataclasses import dataclass

START_JOBS = 2  # the old fixed default: safe before Meta has said anything
GROW_BELOW = 75.0  # percent: room for one more job
BACK_OFF_AT = 90.0  # percent: halve the jobs in flight
COOL_DOWN = 60.0  # seconds without growth after a throttling error


@dataclass(frozen=True)
class Reading:
    """What Meta last said about one account (and the app)."""

    utilisation: float  # percent: the highest fresh reading for the account and the app
    at: float  # clock time of the newest reading (0: none yet)
    throttled_at: float = 0.0  # clock time of the last throttling error (0: none)


class AdaptiveJobLimit:
    """The jobs one account may have in flight (see the module docstring)."""

    def __init__(self, ceiling: int, *, start: int = START_JOBS) -> None:
        self.ceiling = max(1, ceiling)
        self.value = max(1, min(self.ceiling, start))
        self._seen = 0.0  # the newest reading already taken into account
        self._changed = 0.0  # when (reading time) the limit last grew
        self._throttled = 0.0  # the last throttling error taken into account
        self._quiet_until = 0.0  # no growth before this time
        self.reason = ""  # why the last update changed the limit

    def update(self, reading: Reading, in_flight: int) -> int:
        """Take ``reading`` into account, with ``in_flight`` jobs running; return the limit."""
        self.reason = ""
        if reading.throttled_at > self._throttled:
            self._throttled = reading.throttled_at
            self._quiet_until = reading.throttled_at + COOL_DOWN
            self._decrease(in_flight, "a throttling error")
        if reading.at <= self._seen:
            return self.value
        self._seen = reading.at
        if reading.utilisation >= BACK_OFF_AT:
            self._decrease(in_flight, f"{reading.utilisation:.0f}% insights load")
        elif (
            reading.utilisation < GROW_BELOW
            and in_flight >= self.value
            and reading.at > self._changed
            and reading.at >= self._quiet_until
            and self.value < self.ceiling
        ):
            self.value += 1
            self._changed = reading.at
            self.reason = f"{reading.utilisation:.0f}% insights load"
        return self.value

    def room(self, reading: Reading, in_flight: int, at_meta: int | None = None) -> int:
        """Jobs the account may start now: none while Meta's figure is at ``BACK_OFF_AT`` % or
        more, else the limit less the jobs in flight. The limit is updated with ``reading``
        and ``at_meta``, the jobs in flight that Meta still counts (default all: a job that
        has ended at Meta but is not polled yet is in our count, not in Meta's figure)."""
        limit = self.update(reading, in_flight if at_meta is None else at_meta)
        if reading.utilisation >= BACK_OFF_AT:
            return 0
        return max(0, limit - in_flight)

    def _decrease(self, in_flight: int, reason: str) -> None:
        # Half of what is in flight, not of the limit: repeated readings of the same congestion
        # (the jobs already queued cannot be recalled) do not cut it again and again.
        value = max(1, min(self.value, in_flight // 2))
        if value < self.value:
            self.value, self.reason = value, reason
