"""Async report jobs (AdReportRun): per-account capacity, service time, statuses, results."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .insights import InsightsQuery, QueryResult
from .world import Limits

NOT_STARTED, STARTED, RUNNING = "Job Not Started", "Job Started", "Job Running"
COMPLETED, FAILED, SKIPPED = "Job Completed", "Job Failed", "Job Skipped"
HANG_PERCENT = 37
log = logging.getLogger(__name__)

Compute = Callable[[InsightsQuery], Awaitable[tuple[QueryResult, int]]]


@dataclass
class Job:
    id: str
    account_id: str
    query: InsightsQuery
    created_at: datetime  # sandbox clock
    created_wall: float
    fail_reason: str | None = None  # "fault", "too_big": the job will end Job Failed
    skip: bool = False  # the job will end Job Skipped (fault skip_jobs)
    hang: bool = False
    status: str = NOT_STARTED
    started_wall: float | None = None
    running_wall: float | None = None
    target_seconds: float = 0.0  # real service time
    finished_wall: float | None = None
    completed_at: datetime | None = None
    rows: QueryResult | None = None
    frozen_percent: int = 0

    def percent(self, wall: float) -> int:
        if self.status == COMPLETED:
            return 100
        if self.hang:
            return HANG_PERCENT if self.status == RUNNING else 0
        if self.status in (FAILED, SKIPPED):
            return self.frozen_percent
        if self.status == RUNNING and self.running_wall is not None and self.started_wall:
            if self.target_seconds <= 0:
                return 99
            done = (wall - self.started_wall) / self.target_seconds
            return max(1, min(99, int(done * 100)))
        return 0

    def describe(self) -> dict[str, Any]:
        q = self.query
        since, until = q.span
        out: dict[str, Any] = {
            "id": self.id,
            "account_id": self.account_id[4:],
            "time_ref": int(self.created_at.timestamp()),
            "async_status": self.status,
            "async_percent_completion": self.percent(time.monotonic()),
            "date_start": since.isoformat(),
            "date_stop": until.isoformat(),
            "is_running": self.status in (STARTED, RUNNING),
        }
        if self.completed_at is not None:
            out["time_completed"] = int(self.completed_at.timestamp())
        return out


@dataclass
class JobStats:
    created: int = 0
    completed: int = 0
    failed: int = 0
    service_seconds: float = 0.0
    per_account: dict[str, float] = field(default_factory=dict)  # summed real service time
    peak_unfinished: dict[str, int] = field(default_factory=dict)  # most jobs at once, queued too

    def reset(self) -> None:
        self.created = self.completed = self.failed = 0
        self.service_seconds = 0.0
        self.per_account.clear()
        self.peak_unfinished.clear()


class JobRunner:
    """Runs jobs as asyncio tasks; at most `capacity` run at once per account (FIFO)."""

    def __init__(
        self,
        limits: Limits,
        time_scale: float,
        compute: Compute,
        capacity_of: Callable[[str], int],
        clock_now: Callable[[], datetime],
        clock_version: Callable[[], int],
    ) -> None:
        self.limits = limits
        self.time_scale = time_scale
        self.compute = compute
        self.capacity_of = capacity_of
        self.clock_now = clock_now
        self.clock_version = clock_version
        self.jobs: dict[str, Job] = {}
        self.stats = JobStats()
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: dict[str, int] = {}
        self._unfinished: dict[str, int] = {}

    def running(self, account: str) -> int:
        """Jobs of the account holding a capacity slot now."""
        return self._running.get(account, 0)

    def unfinished(self, account: str | None = None) -> int:
        """Jobs not finished yet (queued, started, running or hung): of the account, or of
        every account (the app) when ``account`` is None."""
        if account is None:
            return sum(self._unfinished.values())
        return self._unfinished.get(account, 0)

    def next_slot_seconds(self, account: str) -> float:
        """Real seconds until the account's first running job is due to finish (0 if none
        is running with a known service time)."""
        now = time.monotonic()
        due = [
            j.started_wall + j.target_seconds - now
            for j in self.jobs.values()
            if j.account_id == account
            and j.status == RUNNING
            and not j.hang
            and j.started_wall is not None
        ]
        return max(0.0, min(due, default=0.0))

    def submit(self, job: Job) -> None:
        self.jobs[job.id] = job
        self.stats.created += 1
        unfinished = self._unfinished.get(job.account_id, 0) + 1
        self._unfinished[job.account_id] = unfinished
        peak = self.stats.peak_unfinished
        peak[job.account_id] = max(peak.get(job.account_id, 0), unfinished)
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Job) -> None:
        if job.hang:
            job.status = RUNNING
            job.started_wall = job.running_wall = time.monotonic()
            return
        slot = self._slots.get(job.account_id)
        if slot is None:
            slot = asyncio.Semaphore(max(1, self.capacity_of(job.account_id)))
            self._slots[job.account_id] = slot
        try:
            async with slot:
                self._running[job.account_id] = self._running.get(job.account_id, 0) + 1
                try:
                    await self._serve(job)
                finally:
                    self._running[job.account_id] -= 1
        finally:
            self._unfinished[job.account_id] -= 1

    async def _serve(self, job: Job) -> None:
        """Run one job that holds a capacity slot: compute, wait its service time, finish."""
        job.status = STARTED
        job.started_wall = time.monotonic()
        base = self.limits.job_base_seconds
        per_row = self.limits.job_row_ms / 1000.0
        rows: QueryResult | None = None
        version = 0
        fail = "skipped" if job.skip else job.fail_reason
        if fail not in ("too_big", "skipped"):
            try:
                rows, version = await self.compute(job.query)
            except Exception:  # a bug in the engine must not leave the job hanging
                log.exception("report run %s failed while computing", job.id)
                fail = "error"
            if rows is not None and len(rows) > self.limits.job_max_rows:
                fail = "row_limit"
        n = len(rows) if rows is not None and fail is None else 0
        job.target_seconds = (base + per_row * n) * self.time_scale
        job.running_wall = time.monotonic()
        job.status = RUNNING
        remaining = job.target_seconds - (time.monotonic() - job.started_wall)
        if remaining > 0:
            await asyncio.sleep(remaining)
        if fail is None and self.clock_version() != version:
            # Results reflect the clock at completion: recompute if it moved meanwhile.
            try:
                rows, version = await self.compute(job.query)
            except Exception:
                log.exception("report run %s failed while computing", job.id)
                fail = "error"
        job.finished_wall = time.monotonic()
        service = job.finished_wall - job.started_wall
        self.stats.service_seconds += service
        acct = self.stats.per_account
        acct[job.account_id] = acct.get(job.account_id, 0.0) + service
        job.completed_at = self.clock_now()
        if fail is None:
            job.rows = rows
            job.status = COMPLETED
            self.stats.completed += 1
        else:
            job.frozen_percent = job.percent(job.finished_wall)
            job.status = SKIPPED if fail == "skipped" else FAILED
            self.stats.failed += 1

    def lower_bound_seconds(self) -> float:
        per = [s / max(1, self.capacity_of(a)) for a, s in self.stats.per_account.items()]
        return max(per, default=0.0)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
