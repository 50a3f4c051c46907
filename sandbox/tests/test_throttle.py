"""Usage headers and the throttle model."""

from __future__ import annotations

import json
import time

from meta_sandbox.testing import SandboxServer
from sandbox_support import ACT, ACT2, ACT_OTHER, OTHER_TOKEN, Graph, small_world

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
    # A slow leak (10 units per real second at this scale) so that even a client slowed down
    # by a busy machine (more than 5 calls a second) fills the bucket.
    limits = {"throttle_capacity": 60, "throttle_leak_per_second": 0.1}
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
        # after draining (capacity*0.3/leak = 180 nominal s = 1.8 s) calls pass again
        deadline = time.monotonic() + 10
        while g.get(ACT).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)


def _post_month(g: Graph, account: str = ACT):
    return g.post(f"{account}/insights", level="ad", time_range=MONTH, time_increment=1)


def test_unfinished_jobs_fill_the_insights_header_then_new_jobs_get_80000():
    # 4 job slots per account: each unfinished job holds 25 % of the account's insights
    # capacity. Hung jobs never finish, so the load is fixed whatever the machine's speed.
    with SandboxServer(world=small_world(account_job_slots=4)) as sb:
        sb.add_fault({"kind": "hang_jobs", "account": ACT, "count": 4})
        g = Graph(sb)
        loads = []
        for _ in range(4):
            resp = _post_month(g)
            assert resp.status_code == 200, resp.text
            loads.append(usage(resp)[0]["acc_id_util_pct"])
        assert loads == [25, 50, 75, 100]
        refused = _post_month(g)
        err = refused.json()["error"]
        assert (err["code"], err["error_subcode"], err["is_transient"]) == (80000, 2446079, True)
        throttle, buc, _ = usage(refused)
        assert throttle["acc_id_util_pct"] == 100
        assert buc[ACT[4:]][0]["estimated_time_to_regain_access"] >= 1
        # Reads are not refused: the job load limits new jobs only.
        assert g.get(ACT).status_code == 200
        # The header's other account and the call-rate headers do not carry this load.
        other = _post_month(g, ACT2)
        assert other.status_code == 200
        assert usage(other)[0]["acc_id_util_pct"] == 25
        assert usage(g.get(ACT))[2]["acc_id_util_pct"] < 50
        stats = sb.stats()
        assert stats["throttled"] == {"80000": 1} and stats["throttled_total"] == 1
        assert stats["jobs_created"] == 5
        assert stats["per_account"][ACT]["peak_unfinished_jobs"] == 4
        assert stats["per_account"][ACT2]["peak_unfinished_jobs"] == 1


def test_a_finished_job_frees_its_slot():
    with SandboxServer(world=small_world(account_job_slots=1), time_scale=0.001) as sb:
        g = Graph(sb)
        first = _post_month(g).json()["report_run_id"]
        assert g.wait_job(first)["async_status"] == "Job Completed"
        resp = _post_month(g)
        assert resp.status_code == 200, resp.text
        assert usage(resp)[0]["acc_id_util_pct"] == 100
        assert g.wait_job(resp.json()["report_run_id"])["async_status"] == "Job Completed"
        # Completed jobs hold nothing, even before their results are read.
        assert usage(g.get(ACT))[0]["acc_id_util_pct"] < 100
        assert sb.stats()["throttled_total"] == 0


def test_the_apps_job_slots_span_accounts_and_give_code_4():
    with SandboxServer(world=small_world(app_job_slots=2)) as sb:
        for account in (ACT, ACT2):
            sb.add_fault({"kind": "hang_jobs", "account": account, "count": 1})
        g = Graph(sb)
        assert _post_month(g, ACT).status_code == 200
        second = _post_month(g, ACT2)
        assert second.status_code == 200
        assert usage(second)[0]["app_id_util_pct"] == 100
        refused = Graph(sb, token=OTHER_TOKEN).post(
            f"{ACT_OTHER}/insights", level="ad", time_range=MONTH
        )
        assert refused.json()["error"]["code"] == 4
        assert sb.stats()["throttled"] == {"4": 1}
