"""Scheduler unit tests against a fake Graph client: concurrency, splitting, throttle."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import typing as t

import pytest
from tap_meta_insights.client import Throttle
from tap_meta_insights.concurrency import START_JOBS
from tap_meta_insights.errors import TapFatalError, TooMuchDataError
from tap_meta_insights.planning import DateRange, plan_windows
from tap_meta_insights.reports import ReportSpec
from tap_meta_insights.scheduler import JobScheduler
from tap_meta_insights.settings import parse_settings

D = dt.date.fromisoformat
LOG = logging.getLogger("test-scheduler")


class FakeGraph:
    """Jobs complete after ``polls_to_finish`` polls unless ``outcome`` says otherwise.

    Every answer carries Meta's x-fb-ads-insights-throttle, read by the client's real
    ``Throttle``: the account's figure is ``extra_load`` plus ``per_job`` % per job of the
    account started and not yet seen ending."""

    def __init__(
        self,
        outcome: t.Callable[[dict], str] | None = None,
        polls_to_finish: int = 2,
        per_job: float = 0.0,
    ):
        self.outcome = outcome or (lambda params: "Job Completed")
        self.polls_to_finish = polls_to_finish
        self.throttle = Throttle()
        self.per_job = per_job
        self.extra_load = 0.0
        self.throttle_posts: set[int] = set()  # POSTs (1-based) first answered with 80000
        self.jobs: dict[str, dict] = {}
        self.running: dict[str, int] = {}
        self.max_running = 0
        self.running_at_post: list[int] = []  # the account's jobs running at each POST
        self.lock = threading.Lock()
        self.campaigns = ["c1", "c2", "c3"]
        self.adsets = {"c1": ["s1", "s2"], "c2": ["s3"], "c3": ["s4", "s5", "s6"]}

    def answer(self, account: str) -> None:
        """Meta's throttle header on an answer about ``account``."""
        pct = self.extra_load + self.per_job * self.running.get(account, 0)
        header = {"app_id_util_pct": 0, "acc_id_util_pct": min(100.0, pct)}
        self.throttle.update({"x-fb-ads-insights-throttle": json.dumps(header)}, account)

    def post(self, path: str, params: dict, **kw: t.Any) -> dict:
        account = path.split("/")[0]
        outcome = self.outcome(params)
        if outcome == "too_much_data_at_post":
            raise TooMuchDataError("code 100/1487534")
        with self.lock:
            self.running_at_post.append(self.running.get(account, 0))
            if len(self.running_at_post) in self.throttle_posts:
                self.throttle.note_throttled(account)  # the client retried it, then it passed
            run_id = f"run{len(self.jobs) + 1}"
            self.jobs[run_id] = {
                "params": params,
                "polls": 0,
                "outcome": outcome,
                "done": False,
                "account": account,
            }
            self.running[account] = self.running.get(account, 0) + 1
            self.max_running = max(self.max_running, sum(self.running.values()))
        self.answer(account)
        return {"report_run_id": run_id}

    def get(self, path: str, params: dict | None = None, **kw: t.Any) -> dict:
        job = self.jobs[path]
        job["polls"] += 1
        try:
            if job["polls"] < self.polls_to_finish:
                return {"async_status": "Job Running", "async_percent_completion": 50}
            if not job["done"]:
                job["done"] = True
                with self.lock:
                    self.running[job["account"]] -= 1
            if job["outcome"] == "hang":
                job["done"] = False
                return {"async_status": "Job Running", "async_percent_completion": 1}
            return {"async_status": job["outcome"], "async_percent_completion": 100}
        finally:
            self.answer(job["account"])

    def iter_rows(self, path: str, params: dict | None = None, **kw: t.Any) -> t.Iterator[dict]:
        parent, edge = path.split("/")
        ids = self.campaigns if edge == "campaigns" else self.adsets[parent]
        return iter([{"id": i} for i in ids])


def settings(**over: t.Any):
    base = {
        "access_token": "tok",
        "account_ids": ["act_1"],
        "start_date": "2026-01-01",
        "poll_interval": 0.001,
        "job_timeout": 5,
        **over,
    }
    return parse_settings(base, today=D("2026-11-28"))


def run_all(scheduler: JobScheduler) -> dict[int, list[str]]:
    scheduler.start()
    try:
        results = {}
        for window in scheduler.windows:
            results[window.seq] = scheduler.wait(window)
            scheduler.consumed(window)
        return results
    finally:
        scheduler.stop()


def spans_of(graph: FakeGraph, run_ids: list[str]) -> list[tuple[str, str, tuple]]:
    out = []
    for run_id in run_ids:
        params = graph.jobs[run_id]["params"]
        filt = params.get("filtering")
        ids = tuple(filt[0]["value"]) if filt else ()
        out.append((params["time_range"]["since"], params["time_range"]["until"], ids))
    return out


AD = ReportSpec("ad", "ad", ("spend",))


def test_concurrency_cap_holds_across_reports_and_accounts() -> None:
    graph = FakeGraph(polls_to_finish=3)
    scheduler = JobScheduler(graph, settings(max_concurrent_jobs=3), LOG, lookahead=50)
    for account in ("act_1", "act_2"):
        for report in (AD, ReportSpec("c", "campaign", ("spend",))):
            for span in plan_windows(D("2026-01-01"), D("2026-06-30"), 1):
                scheduler.add(account, report, span)
    results = run_all(scheduler)
    assert len(results) == 24 and scheduler.jobs_created == 24
    assert graph.max_running == 3


def test_failed_job_is_halved_down_to_days_and_covers_the_window_once() -> None:
    # Any job longer than 4 days fails: a 31-day window must end up as <= 4-day jobs.
    def outcome(params: dict) -> str:
        since = D(params["time_range"]["since"])
        until = D(params["time_range"]["until"])
        return "Job Failed" if (until - since).days + 1 > 4 else "Job Completed"

    graph = FakeGraph(outcome)
    scheduler = JobScheduler(graph, settings(), LOG)
    window = scheduler.add("act_1", AD, DateRange(D("2026-01-01"), D("2026-01-31")))
    results = run_all(scheduler)
    spans = spans_of(graph, results[window.seq])
    days = []
    for since, until, _ in spans:
        assert (D(until) - D(since)).days + 1 <= 4
        days += [D(since) + dt.timedelta(days=i) for i in range((D(until) - D(since)).days + 1)]
    assert days == [D("2026-01-01") + dt.timedelta(days=i) for i in range(31)]
    assert scheduler.jobs_split > 0


def test_too_much_data_at_start_and_timeouts_also_split() -> None:
    def outcome(params: dict) -> str:
        days = (D(params["time_range"]["until"]) - D(params["time_range"]["since"])).days + 1
        if days > 8:
            return "too_much_data_at_post"
        return "hang" if days > 2 else "Job Completed"

    graph = FakeGraph(outcome)
    # Long enough that a job of 2 days or less completes before it, even on a loaded machine
    # (at 0.02 s such a job once timed out under `make test` and was split by campaign).
    scheduler = JobScheduler(graph, settings(job_timeout=0.5), LOG)
    window = scheduler.add("act_1", AD, DateRange(D("2026-02-01"), D("2026-02-28")))
    results = run_all(scheduler)
    spans = spans_of(graph, results[window.seq])
    assert sum((D(u) - D(s)).days + 1 for s, u, _ in spans) == 28
    assert all((D(u) - D(s)).days + 1 <= 2 for s, u, _ in spans)


def test_one_day_failure_splits_by_campaign_then_adset() -> None:
    # The day fails unless filtered to at most one ad set of campaign c3, or any other campaign.
    def outcome(params: dict) -> str:
        filt = params.get("filtering")
        if not filt:
            return "Job Failed"
        field, ids = filt[0]["field"], filt[0]["value"]
        if field == "campaign.id" and "c3" in ids:
            return "Job Failed"
        if field == "adset.id" and len(ids) > 1:
            return "Job Failed"
        return "Job Completed"

    graph = FakeGraph(outcome)
    scheduler = JobScheduler(graph, settings(), LOG)
    window = scheduler.add("act_1", AD, DateRange(D("2026-03-05"), D("2026-03-05")))
    results = run_all(scheduler)
    filters = [ids for _, _, ids in spans_of(graph, results[window.seq])]
    assert sorted(x for ids in filters for x in ids) == ["c1", "c2", "s4", "s5", "s6"]


def test_unsplittable_day_gives_up_naming_account_level_and_day() -> None:
    graph = FakeGraph(lambda params: "Job Failed")
    scheduler = JobScheduler(graph, settings(), LOG)
    scheduler.add(
        "act_1",
        ReportSpec("acct", "account", ("spend",)),
        DateRange(D("2026-03-01"), D("2026-03-02")),
    )
    scheduler.start()
    with pytest.raises(
        TapFatalError, match=r"account-level report 'acct' for act_1 on 2026-03-0[12]"
    ):
        scheduler.wait(scheduler.windows[0])
    scheduler.stop()


def test_hot_throttle_holds_new_jobs_and_warm_holds_the_limit() -> None:
    graph = FakeGraph()
    graph.extra_load = 95.0
    graph.answer("act_1")  # e.g. the account lookup
    scheduler = JobScheduler(graph, settings(), LOG)
    for span in plan_windows(D("2026-01-01"), D("2026-03-31"), 1):
        scheduler.add("act_1", AD, span)
    scheduler.start()
    threading.Event().wait(0.2)
    assert scheduler.jobs_created == 0
    # The hot reading cut the limit from its start to 1; warm (75-90 %), it does not grow.
    assert scheduler.limits["act_1"].value == 1 < START_JOBS
    graph.extra_load = 80.0
    graph.answer("act_1")  # any answer about the account (the streams' reads) brings it
    assert len(run_all(scheduler)) == 3
    assert graph.max_running == 1


def test_jobs_in_flight_grow_until_metas_figure_leaves_no_room() -> None:
    # 12.5 % per job (the sandbox's default): 6 jobs are 75 %, where the limit holds.
    graph = FakeGraph(polls_to_finish=4, per_job=12.5)
    scheduler = JobScheduler(graph, settings(max_concurrent_jobs=8), LOG, lookahead=50)
    for span in plan_windows(D("2026-01-01"), D("2026-10-31"), 1):
        scheduler.add("act_1", AD, span)
    run_all(scheduler)
    assert graph.max_running == 6
    assert scheduler.limits["act_1"].value == 6
    assert scheduler.peak_in_flight == 6


def test_the_ceiling_holds_when_meta_leaves_room() -> None:
    graph = FakeGraph(polls_to_finish=4, per_job=1.0)
    scheduler = JobScheduler(graph, settings(max_concurrent_jobs=4), LOG, lookahead=50)
    for span in plan_windows(D("2026-01-01"), D("2026-10-31"), 1):
        scheduler.add("act_1", AD, span)
    run_all(scheduler)
    assert graph.max_running == 4


def test_a_throttling_error_halves_the_accounts_jobs_in_flight() -> None:
    graph = FakeGraph(polls_to_finish=6, per_job=10.0)
    graph.throttle_posts = {5}  # the 5th job is refused once, then passes on a retry
    scheduler = JobScheduler(graph, settings(max_concurrent_jobs=8), LOG, lookahead=50)
    for span in plan_windows(D("2026-01-01"), D("2026-10-31"), 1):
        scheduler.add("act_1", AD, span)
    run_all(scheduler)
    assert graph.running_at_post[:5] == [0, 1, 2, 3, 4]
    # After the error: at most half of the 5 in flight, and no growth (the cool-down).
    assert max(graph.running_at_post[5:]) < 2
    assert scheduler.limits["act_1"].value == 2
