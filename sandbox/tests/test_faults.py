"""Fault rules of the admin API."""

from __future__ import annotations

import pytest
from sandbox_support import ACT, ACT2, TOKEN, Graph, error_of

RANGE = {"since": "2026-11-01", "until": "2026-11-02"}


def test_http_500_every_k(fresh):
    g = Graph(fresh)
    fresh.add_fault({"kind": "http_500_every", "k": 3})
    statuses = [g.get(ACT).status_code for _ in range(9)]
    assert statuses == [200, 200, 500] * 3
    g.get(ACT)
    g.get(ACT)
    err = g.get(ACT)
    assert err.status_code == 500
    codes = []
    fresh.clear_faults()
    fresh.add_fault({"kind": "http_500_every", "k": 1})
    for _ in range(4):
        e = g.get(ACT).json()["error"]
        assert e["is_transient"] is True
        codes.append(e["code"])
    assert codes == [1, 2, 1, 2]
    fresh.clear_faults()
    assert all(g.get(ACT).status_code == 200 for _ in range(5))


def test_expire_token_at_clock_time(fresh):
    g = Graph(fresh)
    fresh.add_fault({"kind": "expire_token", "token": TOKEN, "at": "2026-11-29T00:00:00Z"})
    assert g.get(ACT).status_code == 200
    fresh.advance_clock(days=1)
    resp = g.get(ACT)
    assert resp.status_code == 401
    err = resp.json()["error"]
    assert (err["code"], err["error_subcode"]) == (190, 463)
    fresh.add_fault({"kind": "expire_token", "token": "tok-b"})  # at omitted = now
    assert Graph(fresh, token="tok-b").get("act_200001").json()["error"]["code"] == 190


def test_revoke_account(fresh):
    g = Graph(fresh)
    fresh.add_fault({"kind": "revoke_account", "token": TOKEN, "account": ACT})
    assert g.get(ACT).json()["error"]["code"] == 200
    ids = [a["id"] for a in g.get("me/adaccounts").json()["data"]]
    assert ids == [ACT2]
    fresh.add_fault({"kind": "revoke_account", "token": TOKEN, "account": ACT2, "code": 10})
    assert g.get(f"{ACT2}/insights").json()["error"]["code"] == 10


def test_rate_limit_expires_after_its_seconds(fresh):
    g = Graph(fresh)
    # 50 nominal seconds at time scale 0.001 = 50 ms
    fresh.add_fault({"kind": "rate_limit", "account": ACT, "seconds": 50, "code": 80000})
    first = g.get(f"{ACT}/insights", time_range=RANGE)
    assert first.json()["error"]["code"] == 80000
    import time

    deadline = time.monotonic() + 5
    while g.get(f"{ACT}/insights", time_range=RANGE).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_rate_limit_without_account_hits_every_call(fresh):
    g = Graph(fresh)
    fresh.add_fault({"kind": "rate_limit", "seconds": 600_000, "code": 17})
    assert g.get("me").json()["error"]["code"] == 17
    assert g.get(ACT2).json()["error"]["code"] == 17


def test_too_big_modes(fresh):
    g = Graph(fresh)
    base = {"kind": "too_big", "account": ACT, "since": "2026-10-01", "until": "2026-10-31"}
    fresh.add_fault({**base, "max_days": 7, "mode": "error_1487534"})
    long = {"since": "2026-10-01", "until": "2026-10-10"}
    err = g.post(f"{ACT}/insights", time_range=long).json()["error"]
    assert (err["code"], err["error_subcode"]) == (100, 1487534)
    assert g.get(f"{ACT}/insights", time_range=long).json()["error"]["error_subcode"] == 1487534
    short = {"since": "2026-10-01", "until": "2026-10-07"}
    assert g.get(f"{ACT}/insights", time_range=short).status_code == 200
    outside = {"since": "2026-11-01", "until": "2026-11-20"}
    assert g.get(f"{ACT}/insights", time_range=outside).status_code == 200
    fresh.clear_faults()

    fresh.add_fault({**base, "max_days": 7, "mode": "error_500"})
    resp = g.post(f"{ACT}/insights", time_range=long)
    assert resp.status_code == 500 and resp.json()["error"]["code"] == 1
    fresh.clear_faults()

    fresh.add_fault({**base, "max_days": 7, "mode": "job_failed"})
    run = g.post(f"{ACT}/insights", time_range=long).json()["report_run_id"]
    assert g.wait_job(run)["async_status"] == "Job Failed"
    ok = g.post(f"{ACT}/insights", time_range=short).json()["report_run_id"]
    assert g.wait_job(ok)["async_status"] == "Job Completed"
    fresh.clear_faults()

    fresh.add_fault({**base, "max_days": 0, "mode": "job_failed"})
    one_day = {"since": "2026-10-05", "until": "2026-10-05"}
    run = g.post(f"{ACT}/insights", time_range=one_day).json()["report_run_id"]
    assert g.wait_job(run)["async_status"] == "Job Failed"
    campaigns = g.get(f"{ACT}/campaigns").json()["data"]
    one = [{"field": "campaign.id", "operator": "IN", "value": [campaigns[0]["id"]]}]
    two = [{"field": "campaign.id", "operator": "IN", "value": [c["id"] for c in campaigns[:2]]}]
    run = g.post(f"{ACT}/insights", time_range=one_day, filtering=one).json()["report_run_id"]
    assert g.wait_job(run)["async_status"] == "Job Completed"
    run = g.post(f"{ACT}/insights", time_range=one_day, filtering=two).json()["report_run_id"]
    assert g.wait_job(run)["async_status"] == "Job Failed"
    run = g.post(f"{campaigns[1]['id']}/insights", time_range=one_day).json()["report_run_id"]
    assert g.wait_job(run)["async_status"] == "Job Completed"


def test_bad_fault_rules_are_rejected(sandbox):
    for rule in ({"kind": "nope"}, {"kind": "http_500_every", "k": 0}, {"kind": "fail_jobs"}):
        with pytest.raises(RuntimeError):
            sandbox.add_fault(rule)


def test_skip_jobs_end_job_skipped_without_results(fresh):
    g = Graph(fresh)
    fresh.add_fault({"kind": "skip_jobs", "account": ACT, "count": 1})
    skipped = g.post(f"{ACT}/insights", time_range=RANGE).json()["report_run_id"]
    assert g.wait_job(skipped)["async_status"] == "Job Skipped"
    err = error_of(g.get(f"{skipped}/insights"))
    assert (err["code"], err["error_subcode"], err["is_transient"]) == (2601, 1815107, False)
    nxt = g.post(f"{ACT}/insights", time_range=RANGE).json()["report_run_id"]
    assert g.wait_job(nxt)["async_status"] == "Job Completed"  # the count was used up


@pytest.mark.parametrize("transient", [True, False])
def test_early_fetch_answers_2601_on_completed_jobs(fresh, transient):
    g = Graph(fresh)
    run_id = g.post(f"{ACT}/insights", time_range=RANGE).json()["report_run_id"]
    assert g.wait_job(run_id)["async_status"] == "Job Completed"
    fresh.add_fault({"kind": "early_fetch", "account": ACT, "count": 2, "transient": transient})
    for _ in range(2):
        resp = g.get(f"{run_id}/insights")
        assert resp.status_code == 400
        err = error_of(resp)
        assert (err["code"], err["error_subcode"]) == (2601, 1815107)
        assert err["is_transient"] is transient
    assert g.get(f"{run_id}/insights").json()["data"]
