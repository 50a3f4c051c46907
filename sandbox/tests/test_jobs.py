"""Async report runs: capacity, statuses, paging, stats and the lower bound."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from meta_sandbox.testing import SandboxServer
from sandbox_support import ACT, ACT2, TOKEN, Graph, small_world

ORDER = ["Job Not Started", "Job Started", "Job Running", "Job Completed"]
MONTH = {"since": "2026-10-01", "until": "2026-10-31"}
TRUTH_FIELDS = (
    "account_id,account_name,account_currency,campaign_id,campaign_name,adset_id,adset_name,"
    "ad_id,ad_name,impressions,reach,frequency,clicks,inline_link_clicks,spend,ctr,cpc,cpm,"
    "actions,action_values"
)


def test_capacity_queueing_status_order_and_lower_bound():
    # capacity 2 on ACT; time scale 0.2: base 3 s -> 600 ms per job, so the jobs queued behind
    # the first two are still queued when first polled on a loaded machine (polls every 50 ms
    # stay under the sandbox's rate limit)
    with SandboxServer(world=small_world(), time_scale=0.2) as sb:
        g = Graph(sb)
        started = time.monotonic()
        runs = [
            g.post(f"{ACT}/insights", level="ad", time_range=MONTH, time_increment=1).json()[
                "report_run_id"
            ]
            for _ in range(5)
        ]
        histories: dict[str, list[tuple[str, int]]] = {r: [] for r in runs}
        max_active = 0
        pending = set(runs)
        while pending:
            snapshot = sb.jobs()  # one consistent view of every job
            active = [j for j in snapshot if j["async_status"] in ("Job Started", "Job Running")]
            max_active = max(max_active, len(active))
            for r in runs:
                s = g.get(r).json()
                histories[r].append((s["async_status"], s["async_percent_completion"]))
                if s["async_status"] == "Job Completed":
                    pending.discard(r)
            assert time.monotonic() - started < 30
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        assert max_active == 2  # the account's capacity
        assert any(h[0][0] == "Job Not Started" for h in histories.values())
        for hist in histories.values():
            ranks = [ORDER.index(s) for s, _ in hist]
            assert ranks == sorted(ranks)
            percents = [p for _, p in hist]
            assert percents == sorted(percents) and percents[-1] == 100
        stats = sb.stats()
        assert stats["jobs_created"] == 5 and stats["jobs_completed"] == 5
        per = stats["per_account"][ACT]
        assert per["capacity"] == 2
        assert stats["lower_bound_seconds"] == pytest.approx(per["service_seconds"] / 2, abs=1e-5)
        assert stats["lower_bound_seconds"] >= 5 * 3.0 * 0.2 / 2
        assert elapsed >= stats["lower_bound_seconds"]
        assert stats["rows_served"] == 0
        rows = g.all_pages(f"{runs[0]}/insights", limit=100)
        assert sb.stats()["rows_served"] == len(rows) > 100
        assert stats["requests"]["POST /{account}/insights"]["200"] == 5
        reset = sb.reset_stats()
        assert reset["jobs_created"] == 0 and reset["lower_bound_seconds"] == 0
        assert reset["requests"] == {}


def test_paging_next_is_absolute_and_stable(graph: Graph, sandbox):
    run = graph.post(
        f"{ACT}/insights", level="ad", time_range=MONTH, time_increment=1, fields=TRUTH_FIELDS
    ).json()
    graph.wait_job(run["report_run_id"])
    first = graph.all_pages(f"{run['report_run_id']}/insights", limit=37)
    again = graph.all_pages(f"{run['report_run_id']}/insights", limit=37)
    assert first == again
    assert first == sandbox.truth(ACT, "ad", MONTH["since"], MONTH["until"])
    page = graph.get(f"{run['report_run_id']}/insights", limit=10).json()
    nxt = page["paging"]["next"]
    assert nxt.startswith(sandbox.base_url + "/v23.0/")
    assert parse_qs(urlsplit(nxt).query)["access_token"] == [TOKEN]
    follow = requests.get(nxt, timeout=10).json()  # no params added by the client
    assert follow["data"] == first[10:20]
    prev = requests.get(follow["paging"]["previous"], timeout=10).json()
    assert prev["data"] == first[:10]
    # a token sent in a header is not copied into paging.next
    header = requests.get(
        f"{sandbox.graph_url}/{run['report_run_id']}/insights",
        params={"limit": 10},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).json()
    assert "access_token" not in parse_qs(urlsplit(header["paging"]["next"]).query)
    last = graph.get(f"{run['report_run_id']}/insights", limit=len(first)).json()
    assert "next" not in last["paging"]


def test_report_run_fields(graph: Graph):
    run = graph.post(f"{ACT2}/insights", time_range=MONTH).json()["report_run_id"]
    status = graph.wait_job(run)
    assert status["id"] == run
    assert status["account_id"] == ACT2[4:]
    assert (status["date_start"], status["date_stop"]) == (MONTH["since"], MONTH["until"])
    assert status["async_percent_completion"] == 100
    assert isinstance(status["time_ref"], int) and isinstance(status["time_completed"], int)
    only = graph.get(run, fields="async_status").json()
    assert set(only) == {"id", "async_status"}


def test_fail_and_hang_faults(fresh):
    g = Graph(fresh)
    fresh.add_fault({"kind": "fail_jobs", "account": ACT, "count": 2})
    runs = [g.post(f"{ACT}/insights", time_range=MONTH).json()["report_run_id"] for _ in range(3)]
    assert [g.wait_job(r)["async_status"] for r in runs] == [
        "Job Failed",
        "Job Failed",
        "Job Completed",
    ]
    fresh.add_fault({"kind": "hang_jobs", "account": ACT, "count": 1})
    hung = g.post(f"{ACT}/insights", time_range=MONTH).json()["report_run_id"]
    after = g.post(f"{ACT}/insights", time_range=MONTH).json()["report_run_id"]
    assert g.wait_job(after)["async_status"] == "Job Completed"
    status = g.get(hung).json()
    assert (status["async_status"], status["async_percent_completion"]) == ("Job Running", 37)
    stats = fresh.stats()
    assert stats["jobs_failed"] == 2 and stats["jobs_completed"] == 2


def test_job_over_row_limit_fails():
    with SandboxServer(world=small_world(job_max_rows=20)) as sb:
        g = Graph(sb)
        big = g.post(f"{ACT}/insights", level="ad", time_range=MONTH, time_increment=1).json()
        assert g.wait_job(big["report_run_id"])["async_status"] == "Job Failed"
        small = g.post(f"{ACT}/insights", level="account", time_range=MONTH).json()
        assert g.wait_job(small["report_run_id"])["async_status"] == "Job Completed"


def test_batch_requests(graph: Graph):
    import json

    run = graph.post(f"{ACT}/insights", time_range=MONTH).json()["report_run_id"]
    graph.wait_job(run)
    batch = [
        {"method": "GET", "relative_url": f"v23.0/{run}"},
        {"method": "GET", "relative_url": f"{ACT}?fields=name"},
        {"method": "GET", "relative_url": "act_200001"},
    ]
    resp = graph.post("", batch=batch)
    assert resp.status_code == 200
    out = resp.json()
    assert [o["code"] for o in out] == [200, 200, 403]
    assert json.loads(out[0]["body"])["async_status"] == "Job Completed"
    assert json.loads(out[1]["body"])["name"] == "Nordic Shoes AB"
