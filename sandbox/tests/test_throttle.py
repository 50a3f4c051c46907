"""Usage headers and the throttle model."""

from __future__ import annotations

import json
import time

from meta_sandbox.testing import SandboxServer
from sandbox_support import ACT, Graph, small_world

MONTH = {"since": "2026-10-01", "until": "2026-10-31"}


def usage(resp) -> tuple[dict, dict, dict]:
    throttle = json.loads(resp.headers["x-fb-ads-insights-throttle"])
    buc = json.loads(resp.headers["x-business-use-case-usage"])
    acc = json.loads(resp.headers["x-ad-account-usage"])
    return throttle, buc, acc


def test_headers_on_every_graph_response(graph: Graph):
    for resp in (
        graph.get(ACT),
        graph.get(f"{ACT}/insights", time_range=MONTH),
        graph.get(f"{ACT}/insights", level="bogus"),  # errors carry them too
    ):
        throttle, buc, acc = usage(resp)
        assert set(throttle) >= {"app_id_util_pct", "acc_id_util_pct"}
        item = buc[ACT[4:]][0]
        assert set(item) >= {
            "type",
            "call_count",
            "total_cputime",
            "total_time",
            "estimated_time_to_regain_access",
        }
        assert "acc_id_util_pct" in acc
        assert resp.headers["x-fb-trace-id"]
    insights = graph.get(f"{ACT}/insights", time_range=MONTH)
    assert usage(insights)[1][ACT[4:]][0]["type"] == "ads_insights"
    assert usage(graph.get(f"{ACT}/campaigns"))[1][ACT[4:]][0]["type"] == "ads_management"
    me = graph.get("me")
    assert "x-fb-ads-insights-throttle" in me.headers and "x-app-usage" in me.headers


def test_well_behaved_client_stays_below_the_limit():
    # default limits; 1 nominal second = 10 ms
    with SandboxServer(world=small_world(), time_scale=0.01) as sb:
        g = Graph(sb)
        peak = 0
        for _ in range(3):
            runs = [
                g.post(f"{ACT}/insights", level="ad", time_range=MONTH, time_increment=1)
                for _ in range(4)
            ]
            pending = {r.json()["report_run_id"] for r in runs}
            while pending:
                time.sleep(0.012)  # ~1.2 nominal seconds between polling rounds
                for run in list(pending):
                    resp = g.get(run)
                    assert resp.status_code == 200, resp.text
                    peak = max(peak, usage(resp)[0]["acc_id_util_pct"])
                    if resp.json()["async_status"] == "Job Completed":
                        pending.discard(run)
                        assert g.all_pages(f"{run}/insights", limit=500)
        assert 0 < peak < 75


def test_hammering_client_gets_80000_then_recovers():
    limits = {"throttle_capacity": 60, "throttle_leak_per_second": 2}
    with SandboxServer(world=small_world(**limits), time_scale=0.01) as sb:
        g = Graph(sb)
        seen = []
        for _ in range(2000):
            resp = g.get(f"{ACT}/insights", time_range=MONTH)
            if resp.status_code != 200:
                break
            seen.append(usage(resp)[0]["acc_id_util_pct"])
        err = resp.json()["error"]
        assert (err["code"], err["is_transient"]) == (80000, True)
        assert max(seen) >= 80
        eta = usage(resp)[1][ACT[4:]][0]["estimated_time_to_regain_access"]
        assert eta >= 1
        # management calls on the same account are refused with 80004
        assert g.get(f"{ACT}/campaigns").json()["error"]["code"] == 80004
        # other accounts are not affected
        assert g.get("act_100002/insights", time_range=MONTH).status_code == 200
        # after draining (capacity*0.3/leak = 9 nominal s = 90 ms) calls pass again
        deadline = time.monotonic() + 10
        while g.get(ACT).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
