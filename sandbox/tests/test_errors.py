"""Graph-shaped errors: HTTP status, code, subcode, type, is_transient, fbtrace_id."""

from __future__ import annotations

import pytest
import requests
from meta_sandbox.testing import SandboxServer
from sandbox_support import ACT, ACT_OTHER, TOKEN, Graph, error_of, small_world

RANGE = {"since": "2026-11-01", "until": "2026-11-02"}


def check(resp, status, code, subcode=None, type_="OAuthException", transient=False):
    assert resp.status_code == status, resp.text
    err = error_of(resp)
    assert err["code"] == code
    assert err.get("error_subcode") == subcode
    assert err["type"] == type_
    assert err["is_transient"] is transient
    assert err["message"] and err["fbtrace_id"]
    return err


def test_tokens(sandbox):
    url = f"{sandbox.graph_url}/{ACT}"
    check(requests.get(url, timeout=10), 400, 104)
    check(requests.get(url, params={"access_token": "nope"}, timeout=10), 400, 190)
    ok = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert ok.status_code == 200 and ok.json()["id"] == ACT
    ok = requests.get(url, headers={"Authorization": f"OAuth {TOKEN}"}, timeout=10)
    assert ok.status_code == 200


def test_permission_and_unknown_objects(graph: Graph):
    check(graph.get(ACT_OTHER, fields="name"), 403, 200, 1815066)
    check(graph.get(f"{ACT_OTHER}/insights"), 403, 200, 1815066)
    check(graph.get("act_999"), 400, 100, 33, "GraphMethodException")
    check(graph.get("123456789"), 400, 100, 33, "GraphMethodException")
    check(graph.get(f"{ACT}/nonsense"), 400, 100)
    err = check(graph.get(ACT, fields="name,bogus_field"), 400, 100)
    assert "bogus_field" in err["message"]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"level": "bogus"}, "level"),
        ({"time_range": {"since": "2026-13-01", "until": "2026-12-02"}}, "time_range"),
        ({"time_range": {"since": "2026-11-05", "until": "2026-11-01"}}, "time_range"),
        ({"time_range": RANGE, "fields": "impressions,nope"}, "fields[1]"),
        ({"time_range": RANGE, "breakdowns": ["zodiac"]}, "breakdowns[0]"),
        ({"time_range": RANGE, "action_attribution_windows": ["3d_click"]}, "action_attribution"),
        ({"time_range": RANGE, "time_increment": "91"}, "time_increment"),
        (
            {"time_range": RANGE, "filtering": [{"field": "x.y", "operator": "IN", "value": [1]}]},
            "x.y",
        ),
        ({"time_range": RANGE, "action_report_time": "sometimes"}, "action_report_time"),
    ],
)
def test_invalid_insights_parameters_name_the_parameter(graph: Graph, params, needle):
    for resp in (graph.get(f"{ACT}/insights", **params), graph.post(f"{ACT}/insights", **params)):
        err = check(resp, 400, 100)
        assert needle in err["message"]


def test_start_beyond_37_months(graph: Graph):
    resp = graph.get(f"{ACT}/insights", time_range={"since": "2023-10-01", "until": "2023-10-02"})
    check(resp, 400, 3018)
    ok = graph.get(f"{ACT}/insights", time_range={"since": "2023-11-29", "until": "2023-11-30"})
    assert ok.status_code == 200


def test_reach_with_breakdowns_limited_to_13_months(graph: Graph):
    old = {"since": "2025-09-01", "until": "2025-09-02"}
    resp = graph.get(f"{ACT}/insights", time_range=old, fields="reach", breakdowns=["age"])
    check(resp, 400, 100, 2446289)
    for field in ("frequency", "cpp", "unique_clicks"):  # reach-related too
        resp = graph.get(f"{ACT}/insights", time_range=old, fields=field, breakdowns=["age"])
        check(resp, 400, 100, 2446289)
    assert graph.get(f"{ACT}/insights", time_range=old, fields="impressions", breakdowns=["age"]).ok
    assert graph.get(f"{ACT}/insights", time_range=old, fields="reach").ok  # no breakdowns
    recent = {"since": "2025-11-28", "until": "2025-11-29"}  # within 13 months of 2026-11-28
    assert graph.get(f"{ACT}/insights", time_range=recent, fields="reach", breakdowns=["age"]).ok


def test_sync_too_much_data_is_http_500_code_1():
    with SandboxServer(world=small_world(sync_max_rows=10)) as sb:
        g = Graph(sb)
        resp = g.get(f"{ACT}/insights", level="ad", time_range=RANGE, time_increment=1)
        err = check(resp, 500, 1, 99, "FacebookApiException")
        assert "reduce the amount of data" in err["message"]
        small = g.get(f"{ACT}/insights", level="account", time_range=RANGE, time_increment=1)
        assert small.status_code == 200


def test_results_before_completion_and_of_failed_jobs(fresh):
    g = Graph(fresh)
    fresh.add_fault({"kind": "hang_jobs", "account": ACT, "count": 1})
    run_id = g.post(f"{ACT}/insights", time_range=RANGE).json()["report_run_id"]
    check(g.get(f"{run_id}/insights"), 400, 2601, 1815107, transient=True)
    fresh.add_fault({"kind": "fail_jobs", "account": ACT, "count": 1})
    failed = g.post(f"{ACT}/insights", time_range=RANGE).json()["report_run_id"]
    assert g.wait_job(failed)["async_status"] == "Job Failed"
    check(g.get(f"{failed}/insights"), 400, 2601, 1815107, transient=False)


@pytest.mark.parametrize("code", [4, 17, 613, 80000, 80004])
def test_rate_limit_codes(fresh, code):
    g = Graph(fresh)
    fresh.add_fault({"kind": "rate_limit", "account": ACT, "seconds": 600_000, "code": code})
    resp = g.get(f"{ACT}/insights", time_range=RANGE)
    check(resp, 400, code, resp.json()["error"].get("error_subcode"), transient=True)
    usage = resp.json()
    assert usage["error"]["error_subcode"] in (1504022, 2446079, 1487742)
    import json

    buc = json.loads(resp.headers["x-business-use-case-usage"])[ACT[4:]][0]
    assert buc["estimated_time_to_regain_access"] >= 1
    assert Graph(fresh).get("act_100002").status_code == 200  # other accounts unaffected
