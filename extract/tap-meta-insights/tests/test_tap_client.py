"""GraphClient against a fake transport: auth header, paging, retries, redaction."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
import requests
from requests.adapters import BaseAdapter
from tap_meta_insights.client import GraphClient, Throttle, strip_token
from tap_meta_insights.errors import RetryableError, TapFatalError, TooMuchDataError
from tap_meta_insights.settings import parse_settings

TOKEN = "EAAB-secret-token-42"


class FakeAdapter(BaseAdapter):
    """Answers from a list of (status, body, headers); records the requests."""

    def __init__(self, answers: list[tuple[int, object, dict]]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.requests.append(request)
        status, body, headers = self.answers.pop(0)
        if isinstance(body, Exception):
            raise body
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers.update(headers)
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


def make_client(
    answers: list[tuple[int, object, dict]], **over
) -> tuple[GraphClient, FakeAdapter, list]:
    adapter = FakeAdapter(answers)
    sleeps: list[float] = []

    def session() -> requests.Session:
        s = requests.Session()
        s.mount("https://", adapter)
        return s

    settings = parse_settings(
        {"access_token": TOKEN, "account_ids": "1", "start_date": "2026-01-01", **over},
        today=dt.date(2026, 11, 28),
    )
    client = GraphClient(
        settings, logging.getLogger("test"), sleep=sleeps.append, session_factory=session
    )
    return client, adapter, sleeps


def test_token_goes_in_a_header_never_in_the_url_and_paging_follows_cursors() -> None:
    page1 = {
        "data": [{"id": "1"}, {"id": "2"}],
        "paging": {
            "cursors": {"after": "CUR1"},
            "next": f"https://graph.facebook.com/v23.0/act_1/ads?access_token={TOKEN}&after=CUR1",
        },
    }
    page2 = {"data": [{"id": "3"}], "paging": {"cursors": {"after": "CUR2"}}}
    client, adapter, _ = make_client([(200, page1, {}), (200, page2, {})])
    rows = list(client.iter_rows("act_1/ads", {"fields": "id"}, page_size=2))
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert all(TOKEN not in r.url for r in adapter.requests)
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in adapter.requests)
    assert "after=CUR1" in adapter.requests[1].url and "limit=2" in adapter.requests[1].url


def test_next_url_without_cursor_is_followed_without_the_token() -> None:
    page1 = {
        "data": [{"id": "1"}],
        "paging": {"next": f"https://graph.facebook.com/v23.0/x?access_token={TOKEN}&page=2"},
    }
    client, adapter, _ = make_client([(200, page1, {}), (200, {"data": [{"id": "2"}]}, {})])
    assert [r["id"] for r in client.iter_rows("x")] == ["1", "2"]
    assert "page=2" in adapter.requests[1].url and TOKEN not in adapter.requests[1].url
    assert strip_token(f"https://h/p?a=1&access_token={TOKEN}") == "https://h/p?a=1"


def test_rate_limit_waits_at_least_the_regain_estimate_then_succeeds() -> None:
    limited = {"error": {"code": 80000, "message": "(#80000) too many calls", "is_transient": True}}
    buc = json.dumps(
        {"1": [{"type": "ads_insights", "call_count": 100, "estimated_time_to_regain_access": 2}]}
    )
    client, _, sleeps = make_client(
        [(400, limited, {"x-business-use-case-usage": buc}), (200, {"id": "act_1"}, {})]
    )
    assert client.get("act_1") == {"id": "act_1"}
    assert sleeps == [pytest.approx(120.0, abs=1)]  # 2 minutes, under max_retry_wait (900)


def test_transient_errors_are_retried_with_backoff_then_give_up() -> None:
    boom = {"error": {"code": 2, "message": "unexpected", "is_transient": True}}
    client, _, sleeps = make_client(
        [(500, boom, {}), (503, None, {}), (200, {"ok": 1}, {})], max_retries=2
    )
    assert client.get("x") == {"ok": 1}
    assert len(sleeps) == 2 and all(0 < s <= 900 for s in sleeps)
    client, _, _ = make_client(
        [(500, boom, {}), (500, boom, {}), (500, boom, {}), (500, boom, {})], max_retries=2
    )
    with pytest.raises(RetryableError, match="gave up after 2 retries"):
        client.get("x")
    client, _, sleeps = make_client(
        [(200, requests.ConnectionError("reset"), {}), (200, {"ok": 1}, {})]
    )
    assert client.get("x") == {"ok": 1} and len(sleeps) == 1


def test_too_much_data_on_a_result_page_halves_the_page_size() -> None:
    reduce = {"error": {"code": 1, "message": "Please reduce the amount of data you're asking for"}}
    client, adapter, _ = make_client([(500, reduce, {}), (200, {"data": [{"id": "1"}]}, {})])
    rows = list(client.iter_rows("run/insights", shrink_pages=True, page_size=500))
    assert rows == [{"id": "1"}]
    assert "limit=250" in adapter.requests[1].url
    client, _, _ = make_client([(500, reduce, {})])
    with pytest.raises(TooMuchDataError):
        client.post("act_1/insights", {"level": "ad"})


def test_fatal_errors_are_redacted_one_liners() -> None:
    bad = {"error": {"code": 190, "message": f"Invalid OAuth access token {TOKEN}"}}
    client, _, _ = make_client([(400, bad, {})])
    with pytest.raises(TapFatalError) as info:
        client.get("act_1")
    assert TOKEN not in str(info.value)
    assert "refresh the access token" in str(info.value) and "\n" not in str(info.value)


def test_throttle_reads_every_usage_header_and_forgets_stale_readings() -> None:
    now = [100.0]
    throttle = Throttle(clock=lambda: now[0], stale_after=60)
    throttle.update(
        {"x-fb-ads-insights-throttle": json.dumps({"app_id_util_pct": 10, "acc_id_util_pct": 91})}
    )
    assert throttle.utilisation() == 91
    throttle.update(
        {
            "x-business-use-case-usage": json.dumps(
                {"1": [{"type": "ads_insights", "total_time": 95}]}
            )
        }
    )
    assert throttle.utilisation() == 95
    now[0] += 61
    assert throttle.utilisation() == 0
    throttle.update({"x-ad-account-usage": "not json"})
    assert throttle.utilisation() == 0


def test_throttle_keeps_readings_per_account_and_the_apps_for_all() -> None:
    now = [100.0]
    throttle = Throttle(clock=lambda: now[0], stale_after=60)

    def insights(app: float, acc: float) -> dict:
        header = {"app_id_util_pct": app, "acc_id_util_pct": acc}
        return {"x-fb-ads-insights-throttle": json.dumps(header)}

    throttle.update(insights(5, 80), "act_1")
    now[0] += 1
    throttle.update(insights(20, 10), "act_2")
    assert throttle.utilisation("act_1") == 80
    assert throttle.utilisation("act_2") == 20  # its own 10 %, the app's latest 20 %
    assert throttle.utilisation() == 80  # every reading
    first, second = throttle.reading("act_1"), throttle.reading("act_2")
    assert (first.utilisation, first.at) == (80, 101.0)  # the app's reading is newer
    assert (second.utilisation, second.at, second.throttled_at) == (20, 101.0, 0.0)
    now[0] += 1
    throttle.note_throttled("act_1")
    assert throttle.reading("act_1").throttled_at == 102.0
    assert throttle.reading("act_2").throttled_at == 0.0
    now[0] += 1
    throttle.note_throttled(None)  # the app's limit: every account
    assert throttle.reading("act_2").throttled_at == 103.0
    now[0] += 61
    assert throttle.reading("act_1").utilisation == 0  # stale


@pytest.mark.parametrize(
    ("code", "app_wide"), [(80000, False), (613, False), (4, True), (17, True)]
)
def test_a_throttling_error_is_noted_for_its_account_or_the_app(code: int, app_wide: bool) -> None:
    limited = {"error": {"code": code, "message": "limit", "is_transient": True}}
    client, _, _ = make_client([(400, limited, {}), (200, {"id": "1"}, {})])
    assert client.get("act_1", account="act_1") == {"id": "1"}
    assert client.throttle.reading("act_1").throttled_at > 0
    assert (client.throttle.reading("act_2").throttled_at > 0) is app_wide
