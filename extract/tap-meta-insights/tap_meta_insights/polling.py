"""When to poll an async report job next.

The first poll comes ``FIRST_POLL_SECONDS`` after the job was created: a small job may be done
by then. After that, Meta's ``async_percent_completion`` sets the pace: from the progress since
the last change of the percentage, the job's remaining time is extrapolated and the next poll
lands just after it. A job that shows no progress (queued at Meta, or a percentage that moves
in steps) is polled with backoff, but looked at soon when another job of its account ends
(Meta starts a queued job when a running one ends). Every wait is at least ``MIN_GAP_SECONDS``
and at most the ``poll_interval`` setting (the cap, which wins if it is smaller).

Pure logic: the scheduler keeps one :class:`PollPacer` per job and feeds it the clock.
"""

from __future__ import annotations

FIRST_POLL_SECONDS = 0.5
MIN_GAP_SECONDS = 0.25
LATE_MARGIN_SECONDS = 0.1  # poll just after the extrapolated end, not just before it
BACKOFF = 1.5  # growth of the wait while the percentage does not move


class PollPacer:
    """The polling pace of one job (see the module docstring)."""

    def __init__(self, submitted_at: float, cap: float) -> None:
        self.cap = cap
        # The last change of the percentage: when and to what. At creation the job is assumed
        # to start at once (true unless Meta queues it; a poll at 0 % moves the mark).
        self._mark_at = submitted_at
        self._mark_percent = 0.0
        self._start_known = True  # False: the job started at some moment after the mark
        self._still = 0  # polls since the percentage last changed
        self.expected_end: float | None = None  # when the progress says it ends (None: unknown)

    @property
    def started(self) -> bool:
        """Whether a poll has shown progress (else the job may still be queued at Meta)."""
        return self._mark_percent > 0

    def probably_ended(self, now: float) -> bool:
        """Whether Meta's progress says the job has ended by ``now`` (not yet seen by a poll)."""
        return self.expected_end is not None and self.expected_end <= now

    def slot_freed(self, now: float) -> float:
        """Another job of the account just ended, so a job Meta had queued starts about now:
        the seconds to wait for a first look at it (its start is then taken as unknown)."""
        if not self.started:
            self._mark_at, self._start_known = now, False
        return self._clamp(MIN_GAP_SECONDS)

    def first_delay(self) -> float:
        """Seconds from the job's creation to its first poll."""
        return self._clamp(FIRST_POLL_SECONDS)

    def next_delay(self, now: float, percent: float) -> float:
        """Seconds from a poll at ``now`` that read ``percent`` to the next poll."""
        if 0 < percent < 100 and percent > self._mark_percent:
            rate = (percent - self._mark_percent) / max(now - self._mark_at, 1e-3)
            remaining = (100 - percent) / rate
            start_known = self._start_known
            self._mark_at, self._mark_percent, self._start_known = now, percent, True
            self._still = 0
            if not start_known:
                # It started at some moment since the last look at 0 %, so the rate is only
                # known to be at least this: look again soon, and measure it.
                self.expected_end = None
                return self._clamp(min(remaining / 2, FIRST_POLL_SECONDS))
            self.expected_end = now + remaining
            return self._clamp(remaining + LATE_MARGIN_SECONDS)
        if percent >= 100:
            self.expected_end = now
            return self._clamp(MIN_GAP_SECONDS)  # done but not yet "Job Completed"
        if self._mark_percent == 0:
            # Not started yet (queued at Meta): it will start after now, at an unknown moment.
            self._mark_at, self._start_known = now, False
        self._still += 1
        return self._clamp(FIRST_POLL_SECONDS * BACKOFF**self._still)

    def _clamp(self, seconds: float) -> float:
        return min(self.cap, max(MIN_GAP_SECONDS, seconds))
