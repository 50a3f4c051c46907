"""Scheduler unit tests against a fake Graph client: concurrency, splitting, throttle."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import typing as t

import pytest
from tap_meta_insights.errors import TapFatalError, TooMuchDataError
from tap_meta_insights.planning import DateRange, plan_windows
from tap_meta_insights.reports import ReportSpec
from tap_meta_insights.scheduler import JobScheduler
from tap_meta_insights.settings import parse_settings

D = dt.date.fromisoformat
LOG = logging.getLogger("test-scheduler")


class FakeThrottle:
    def __init__(self) -> None:
        self.util = 0.0
        self.regain_until = 0.0

    def utilisation(self) -> float:
        return self.util


class FakeGraph:
    """Jobs complete after ``polls_to_finish`` polls unless ``outcome`` says otherwise."""

    def __init__(self, outcome: t.Callable[[dict], str] | None = None, polls_to_finish: int = 2):
        self.outcome = outcome or (lambda params: "Job Completed")
        self.polls_to_finish = polls_to_finish
        self.throttle = FakeThrottle()
        self.jobs: dict[str, dict] = {}
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()
        self.campaigns = ["c1", "c2", "c3"]
        self.adsets = {"c1": ["s1", "s2"], "c2": ["s3"], "c3": ["s4", "s5", "s6"]}

    def post(self, path: str, params: dict, **kw: t.Any) -> dict:
        outcome = self.outcome(params)
        if outcome == "too_much_data_at_post":
            raise TooMuchDataError("code 100/1487534")
        with self.lock:
            run_id = f"run{len(self.jobs) + 1}"
            self.jobs[run_id] = {"params": params, "polls": 0, "outcome": outcome, "done": False}
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        return {"report_run_id": run_id}

    def get(self, path: str, params: dict | None = None, **kw: t.Any) -> dict:
        job = self.jobs[path]
        job["polls"] += 1
        if job["polls"] < self.polls_to_finish:
            return {"async_status": "Job Running", "async_percent_completion": 50}
        if not job["done"]:
            job["done"] = True
            with self.lock:
                self.running -= 1
        if job["outcome"] == "hang":
            job["done"] = False
            return {"async_status": "Job Running", "async_percent_completion": 1}
        return {"async_status": job["outcome"], "async_percent_completion": 100}

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
    scheduler = JobScheduler(graph, settings(job_timeout=0.02), LOG)
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


def test_hot_throttle_holds_new_jobs() -> None:
    graph = FakeGraph()
    graph.throttle.util = 95.0
    scheduler = JobScheduler(graph, settings(), LOG)
    scheduler.add("act_1", AD, DateRange(D("2026-03-01"), D("2026-03-02")))
    scheduler.start()
    threading.Event().wait(0.2)
    assert scheduler.jobs_created == 0
    graph.throttle.util = 80.0  # warm: one at a time
    assert len(run_all(scheduler)) == 1
    assert graph.max_running == 1
