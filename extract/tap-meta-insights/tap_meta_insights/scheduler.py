"""The run-wide async job scheduler.

One scheduler, owned by the tap, runs every planned window of every (account, report)
as async report jobs on one background thread: it starts jobs (per account as many as its
adaptive limit allows, ``concurrency.AdaptiveJobLimit``, and at most ``max_concurrent_jobs``
in flight across the run; none while Meta asks us to wait for access), polls each one at the
pace of Meta's progress (``polling.PollPacer``), and splits those that fail, time out or are
too big: in date halves down to one day, then by campaigns, then by ad sets. The main thread
(the streams) reads the results of completed windows page by page, in plan order, while the
scheduler keeps Meta busy with the next windows — including the next report's — up to a small
look-ahead.
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t
from dataclasses import dataclass, field

from tap_meta_insights.concurrency import AdaptiveJobLimit
from tap_meta_insights.errors import (
    JobFailedError,
    RetryableError,
    TapFatalError,
    TooMuchDataError,
)
from tap_meta_insights.graph_api import ALL_STATUSES
from tap_meta_insights.planning import DateRange
from tap_meta_insights.polling import PollPacer

if t.TYPE_CHECKING:
    from tap_meta_insights.client import GraphClient
    from tap_meta_insights.reports import ReportSpec
    from tap_meta_insights.settings import Settings

DONE_STATUSES = frozenset({"Job Completed"})
FAILED_STATUSES = frozenset({"Job Failed", "Job Skipped"})
MAX_ATTEMPTS_UNSPLITTABLE = 2  # tries of a job that cannot be split any further
MAX_RESULT_RERUNS = 2  # new report runs for a window whose finished run's results are gone


@dataclass(eq=False)
class JobNode:
    """One async job (or, once split, the parent of the jobs that replace it)."""

    span: DateRange
    stage: str = "date"  # date | campaign | adset: what it is filtered on
    ids: tuple[str, ...] = ()
    state: str = "pending"  # pending | running | done | split
    run_id: str | None = None
    attempts: int = 0
    started_at: float = 0.0
    next_poll: float = 0.0
    polls: int = 0
    pacer: PollPacer | None = None
    children: list[JobNode] = field(default_factory=list)

    def leaves(self) -> t.Iterator[JobNode]:
        """The jobs that stand for this node, in order."""
        if self.state == "split":
            for child in self.children:
                yield from child.leaves()
        else:
            yield self

    def describe(self) -> str:
        """``2024-01-01..2024-01-31 (campaign.id IN 3 ids)``."""
        text = str(self.span)
        if self.stage != "date":
            text += f" ({self.stage}.id IN {len(self.ids)} ids)"
        return text


@dataclass(eq=False)
class PlannedWindow:
    """A planned window of one (account, report): one job unless it had to be split."""

    seq: int
    account_id: str
    report: ReportSpec
    span: DateRange
    root: JobNode
    ready: bool = False
    consumed: bool = False
    error: BaseException | None = None
    reruns: int = 0

    @property
    def label(self) -> str:
        """``insights_ad act_1 2024-01-01..2024-01-31``."""
        return f"{self.report.stream_name} {self.account_id} {self.span}"


class JobScheduler:
    """Runs async insights jobs for every planned window; see the module docstring."""

    def __init__(
        self,
        client: GraphClient,
        settings: Settings,
        logger: logging.Logger,
        *,
        clock: t.Callable[[], float] = time.monotonic,
        lookahead: int | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.logger = logger
        self.clock = clock
        self.max_jobs = settings.max_concurrent_jobs
        self.lookahead = lookahead or max(3, 2 * settings.max_concurrent_jobs)
        self.limits: dict[str, AdaptiveJobLimit] = {}  # per account
        self.windows: list[PlannedWindow] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False
        self._fatal: BaseException | None = None
        self._demanded: set[int] = set()
        self._running: list[JobNode] = []
        self._owner: dict[int, PlannedWindow] = {}
        self._children_cache: dict[tuple[str, str], list[str]] = {}
        self._held_logged = False
        self.peak_in_flight = 0
        self.jobs_created = 0
        self.jobs_split = 0

    # -- planning -------------------------------------------------------------------------
    def add(self, account_id: str, report: ReportSpec, span: DateRange) -> PlannedWindow:
        """Plan one window (before ``start``)."""
        window = PlannedWindow(len(self.windows), account_id, report, span, JobNode(span))
        self.windows.append(window)
        return window

    def start(self) -> None:
        """Start the background thread (no-op without windows)."""
        if self._thread is None and self.windows:
            self._thread = threading.Thread(target=self._main, name="insights-jobs", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the background thread (jobs already started keep running at Meta)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # -- consumer side (main thread) ------------------------------------------------------
    def wait(self, window: PlannedWindow) -> list[str]:
        """Block until every job of ``window`` completed; return their run ids in order."""
        with self._cond:
            self._demanded.add(window.seq)
            self._cond.notify_all()
            while not window.ready and window.error is None and self._fatal is None:
                if self._thread is None or not self._thread.is_alive():
                    msg = "the insights job scheduler stopped unexpectedly"
                    raise TapFatalError(msg)
                self._cond.wait(timeout=1.0)
            if window.error is not None:
                raise window.error
            if self._fatal is not None:
                raise self._fatal
            return [leaf.run_id for leaf in window.root.leaves() if leaf.run_id]

    def rerun(self, window: PlannedWindow, run_id: str, reason: str) -> None:
        """The results of a completed run are unreadable (2601, not transient): run that job
        again. The caller waits for the window again and re-reads it (duplicates are dropped)."""
        with self._cond:
            if window.reruns >= MAX_RESULT_RERUNS:
                msg = (
                    f"{window.label}: Meta lost the results of report run {run_id} "
                    f"{window.reruns + 1} times ({reason}); retry the run later."
                )
                raise TapFatalError(msg)
            window.reruns += 1
            for leaf in window.root.leaves():
                if leaf.run_id == run_id:
                    leaf.state, leaf.run_id = "pending", None
            window.ready = False
            self._cond.notify_all()
        self.logger.info(
            "%s: results of report run %s are unreadable (%s); running the job again",
            window.label,
            run_id,
            reason,
        )
        if self._thread is not None and not self._thread.is_alive():
            self._thread = None  # it had finished every window: start it again
            self.start()

    def consumed(self, window: PlannedWindow) -> None:
        """The stream has read every row of ``window``: let the look-ahead move on."""
        with self._cond:
            window.consumed = True
            self._demanded.discard(window.seq)
            self._cond.notify_all()

    # -- background thread ----------------------------------------------------------------
    def _main(self) -> None:
        try:
            while True:
                with self._cond:
                    if self._stop or all(w.ready or w.consumed for w in self.windows):
                        return
                self._poll_due()
                self._start_jobs()
                with self._cond:
                    if self._stop:
                        return
                    self._cond.wait(timeout=self._sleep_seconds())
        except BaseException as exc:
            if not isinstance(exc, TapFatalError):
                self.logger.exception("insights job scheduler crashed")
            with self._cond:
                self._fatal = exc
                self._cond.notify_all()

    def _sleep_seconds(self) -> float:
        now = self.clock()
        due = [job.next_poll - now for job in self._running]
        if not due:
            return self.settings.poll_interval
        return max(0.0, min(min(due), self.settings.poll_interval))

    def _admitted(self) -> list[PlannedWindow]:
        """Windows that may start jobs: demanded ones first, then the look-ahead."""
        open_windows = [w for w in self.windows if not w.ready and not w.consumed]
        first_unconsumed = next((w.seq for w in self.windows if not w.consumed), len(self.windows))
        demanded = [w for w in open_windows if w.seq in self._demanded]
        ahead = [w for w in open_windows if w.seq < first_unconsumed + self.lookahead]
        return list(dict.fromkeys([*demanded, *ahead]))

    def in_flight(self, account_id: str) -> int:
        """Jobs of the account started and not yet seen ending."""
        return sum(1 for job in self._running if self._owner[id(job)].account_id == account_id)

    def _room(self, account_id: str) -> int:
        """Jobs the account may start now: its adaptive limit (fed Meta's latest reading) less
        its jobs in flight; none while Meta asks us to wait for access."""
        throttle = self.client.throttle
        if self.clock() < throttle.regain_until:
            if not self._held_logged:
                self.logger.info(
                    "Meta asks to wait %.0fs for access: holding new report jobs (%d running)",
                    throttle.regain_until - self.clock(),
                    len(self._running),
                )
                self._held_logged = True
            return 0
        self._held_logged = False
        limit = self.limits.get(account_id)
        if limit is None:
            limit = self.limits[account_id] = AdaptiveJobLimit(self.max_jobs)
        mine = [j for j in self._running if self._owner[id(j)].account_id == account_id]
        now = self.clock()
        at_meta = sum(1 for j in mine if not (j.pacer and j.pacer.probably_ended(now)))
        in_flight = len(mine)
        before = limit.value
        room = limit.room(throttle.reading(account_id), in_flight, at_meta)
        after = limit.value
        if after < before:
            self.logger.info(
                "%s: backing off after %s from Meta: at most %d report job(s) in flight "
                "(was %d; %d running)",
                account_id,
                limit.reason,
                after,
                before,
                in_flight,
            )
        elif after > before:
            self.logger.debug(
                "%s: %s: up to %d report jobs in flight", account_id, limit.reason, after
            )
        return room

    def _start_jobs(self) -> None:
        while len(self._running) < self.max_jobs:
            with self._cond:
                candidates = self._admitted()
            room: dict[str, int] = {}
            picked: tuple[PlannedWindow, JobNode] | None = None
            for window in candidates:
                job = next((j for j in window.root.leaves() if j.state == "pending"), None)
                if job is None:
                    continue
                if window.account_id not in room:
                    room[window.account_id] = self._room(window.account_id)
                if room[window.account_id] > 0:
                    picked = (window, job)
                    break
            if picked is None:
                return
            self._submit(*picked)

    def _params(self, window: PlannedWindow, job: JobNode) -> dict[str, t.Any]:
        report = window.report
        params: dict[str, t.Any] = {
            "level": report.level,
            "fields": ",".join(report.request_fields),
            "time_range": {
                "since": job.span.since.isoformat(),
                "until": job.span.until.isoformat(),
            },
            "time_increment": 1,
            "action_attribution_windows": list(report.action_attribution_windows),
            "action_report_time": report.action_report_time,
            "limit": self.settings.page_size,
        }
        if report.breakdowns:
            params["breakdowns"] = ",".join(report.breakdowns)
        if report.action_breakdowns:
            params["action_breakdowns"] = ",".join(report.action_breakdowns)
        if job.stage != "date":
            params["filtering"] = [
                {"field": f"{job.stage}.id", "operator": "IN", "value": list(job.ids)}
            ]
        return params

    def _submit(self, window: PlannedWindow, job: JobNode) -> None:
        job.attempts += 1
        try:
            body = self.client.post(
                f"{window.account_id}/insights",
                self._params(window, job),
                account=window.account_id,
                what=f"starting the {window.report.level}-level report job {job.describe()}",
            )
        except TooMuchDataError as exc:
            self._failed(window, job, f"too much data ({exc})", too_much=True)
            return
        except JobFailedError as exc:
            self._failed(window, job, str(exc))
            return
        except RetryableError as exc:
            raise TapFatalError(f"{window.label}: {exc}") from None
        run_id = str(body.get("report_run_id") or body.get("id") or "")
        if not run_id:
            msg = f"Meta did not return a report_run_id for {window.label}"
            raise TapFatalError(msg)
        now = self.clock()
        job.run_id, job.state, job.started_at, job.polls = run_id, "running", now, 0
        job.pacer = PollPacer(now, self.settings.poll_interval)
        job.next_poll = now + job.pacer.first_delay()
        self._running.append(job)
        self._owner[id(job)] = window
        self.jobs_created += 1
        self.peak_in_flight = max(self.peak_in_flight, len(self._running))
        self.logger.debug("Started job %s for %s", run_id, window.label)

    def _poll_due(self) -> None:
        now = self.clock()
        for job in [j for j in self._running if j.next_poll <= now]:
            window = self._owner[id(job)]
            try:
                body = self.client.get(
                    str(job.run_id),
                    {"fields": "async_status,async_percent_completion"},
                    account=window.account_id,
                    what=f"polling report job {job.describe()} of {window.label}",
                )
            except TooMuchDataError as exc:
                self._finish(job)
                self._failed(window, job, str(exc), too_much=True)
                continue
            except JobFailedError as exc:
                self._finish(job)
                self._failed(window, job, str(exc))
                continue
            except RetryableError as exc:
                raise TapFatalError(f"{window.label}: {exc}") from None
            status = str(body.get("async_status") or "")
            percent = _float(body.get("async_percent_completion"))
            now = self.clock()
            elapsed = now - job.started_at
            if status in DONE_STATUSES:
                self._finish(job)
                job.state = "done"
                self._maybe_ready(window)
            elif status in FAILED_STATUSES:
                self._finish(job)
                self._failed(window, job, status)
            elif elapsed > self.settings.job_timeout:
                self._finish(job)
                self._failed(window, job, f"timed out after {elapsed:.0f}s ({percent:.0f}%)")
            else:
                job.polls += 1
                pacer = job.pacer or PollPacer(job.started_at, self.settings.poll_interval)
                job.pacer = pacer
                job.next_poll = now + pacer.next_delay(now, percent)

    def _finish(self, job: JobNode) -> None:
        if job in self._running:
            self._running.remove(job)
            self._slot_freed(self._owner[id(job)].account_id)

    def _slot_freed(self, account_id: str) -> None:
        """A job of the account ended: Meta starts the oldest one it had queued, so look at that
        one soon (else a short job could start and end unseen between two backoff polls, and
        our count of the account's jobs would run ahead of Meta's)."""
        for job in self._running:
            if (
                self._owner[id(job)].account_id == account_id
                and job.pacer
                and not job.pacer.started
            ):
                job.next_poll = min(
                    job.next_poll, self.clock() + job.pacer.slot_freed(self.clock())
                )
                return

    def _maybe_ready(self, window: PlannedWindow) -> None:
        if all(leaf.state == "done" for leaf in window.root.leaves()):
            with self._cond:
                window.ready = True
                self._cond.notify_all()

    # -- splitting ------------------------------------------------------------------------
    def _failed(
        self, window: PlannedWindow, job: JobNode, reason: str, *, too_much: bool = False
    ) -> None:
        children = self._split(window, job)
        if children:
            job.state, job.children, job.run_id = "split", children, None
            self.jobs_split += 1
            self.logger.info(
                "%s: job %s failed (%s); split into %d jobs: %s",
                window.label,
                job.describe(),
                reason,
                len(children),
                ", ".join(c.describe() for c in children),
            )
            return
        if not too_much and job.attempts < MAX_ATTEMPTS_UNSPLITTABLE:
            self.logger.info(
                "%s: job %s failed (%s); retrying", window.label, job.describe(), reason
            )
            job.state, job.run_id = "pending", None
            return
        what = f" for {job.stage}s {', '.join(job.ids)}" if job.stage != "date" else ""
        error = TapFatalError(
            f"Meta could not produce the {window.report.level}-level report "
            f"'{window.report.name}' for {window.account_id} on {job.span.since}{what} "
            f"({reason}) even after splitting; retry later or ask for fewer fields or breakdowns."
        )
        with self._cond:
            window.error = error
            self._fatal = error
            self._cond.notify_all()

    def _split(self, window: PlannedWindow, job: JobNode) -> list[JobNode]:
        level = window.report.level
        if job.span.days > 1:
            first, second = job.span.halves()
            return [JobNode(first), JobNode(second)]
        if job.stage == "date" and level != "account":
            ids = self._children(window.account_id, "campaigns", window.account_id)
            if len(ids) > 1:
                return _halve_ids(job.span, "campaign", ids)
            if len(ids) == 1:
                job = JobNode(job.span, "campaign", tuple(ids))
        if job.stage == "campaign" and len(job.ids) > 1:
            return _halve_ids(job.span, "campaign", list(job.ids))
        if job.stage == "campaign" and level in ("adset", "ad"):
            ids = self._children(window.account_id, "adsets", job.ids[0])
            if len(ids) > 1:
                return _halve_ids(job.span, "adset", ids)
            return []
        if job.stage == "adset" and len(job.ids) > 1:
            return _halve_ids(job.span, "adset", list(job.ids))
        return []

    def _children(self, account_id: str, edge: str, parent: str) -> list[str]:
        """Ids of the campaigns of an account or the ad sets of a campaign (cached)."""
        key = (edge, parent)
        if key not in self._children_cache:
            ids = [
                str(row["id"])
                for row in self.client.iter_rows(
                    f"{parent}/{edge}",
                    {"fields": "id", "effective_status": list(ALL_STATUSES[edge])},
                    account=account_id,
                    what=f"listing {edge} to split a report job",
                )
                if row.get("id")
            ]
            self._children_cache[key] = ids
        return self._children_cache[key]


def _halve_ids(span: DateRange, stage: str, ids: list[str]) -> list[JobNode]:
    mid = (len(ids) + 1) // 2
    return [JobNode(span, stage, tuple(ids[:mid])), JobNode(span, stage, tuple(ids[mid:]))]


def _float(value: t.Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
