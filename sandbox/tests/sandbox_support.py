"""Helpers for the sandbox tests: a small world and a minimal Graph client."""

from __future__ import annotations

import json
from typing import Any

import requests
from meta_sandbox.testing import SandboxServer

NOW = "2026-11-28T12:00:00Z"
TOKEN = "tok-a"
OTHER_TOKEN = "tok-b"
ACT = "act_100001"
ACT2 = "act_100002"
ACT_OTHER = "act_200001"


def small_world(**limits: Any) -> dict[str, Any]:
    world: dict[str, Any] = {
        "seed": 7,
        "now": NOW,
        "tokens": [
            {"token": TOKEN, "accounts": [ACT, ACT2]},
            {"token": OTHER_TOKEN, "accounts": [ACT_OTHER]},
        ],
        "accounts": [
            {
                "id": ACT,
                "name": "Nordic Shoes AB",
                "currency": "SEK",
                "timezone_name": "Europe/Stockholm",
                "history_days": 120,
                "campaigns": 3,
                "adsets_per_campaign": 2,
                "ads_per_adset": 2,
                "capacity": 2,
            },
            {
                "id": ACT2,
                "name": "Sunrise Outdoor Inc.",
                "currency": "USD",
                "timezone_name": "America/Los_Angeles",
                "history_days": 60,
                "campaigns": 2,
                "adsets_per_campaign": 1,
                "ads_per_adset": 2,
            },
            {
                "id": ACT_OTHER,
                "name": "Bondi Surf Co.",
                "currency": "AUD",
                "timezone_name": "Australia/Sydney",
                "history_days": 30,
                "campaigns": 1,
                "adsets_per_campaign": 1,
                "ads_per_adset": 2,
            },
        ],
    }
    if limits:
        world["limits"] = limits
    return world


class Graph:
    """Minimal Graph client over requests (the tap's shape of calls)."""

    def __init__(self, sb: SandboxServer, token: str = TOKEN, version: str = "v23.0") -> None:
        self.base = f"{sb.base_url}/{version}"
        self.token = token
        self.http = requests.Session()

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(f"{self.base}/{path}", params=self._params(params), timeout=30)

    def post(self, path: str, **params: Any) -> requests.Response:
        return self.http.post(f"{self.base}/{path}", data=self._params(params), timeout=30)

    def _params(self, params: dict[str, Any]) -> dict[str, Any]:
        out = {"access_token": self.token}
        for k, v in params.items():
            out[k] = json.dumps(v) if isinstance(v, (dict, list)) else v
        return out

    def wait_job(self, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.get(run_id).json()
            if status["async_status"] in ("Job Completed", "Job Failed", "Job Skipped"):
                return status
            time.sleep(0.005)
        raise AssertionError(f"job {run_id} did not finish: {status}")

    def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        body = self.get(path, **params).json()
        rows = list(body["data"])
        while body.get("paging", {}).get("next"):
            body = self.http.get(body["paging"]["next"], timeout=30).json()
            rows.extend(body["data"])
        return rows


def error_of(resp: requests.Response) -> dict[str, Any]:
    body = resp.json()
    assert "error" in body, body
    return body["error"]
