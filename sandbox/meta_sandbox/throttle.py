"""Rate-limit model: leaky buckets per ad account and per app, in sandbox (nominal) seconds,
and the insights job load.

Every Graph call pours `cost` units into its account's bucket and into the app bucket; the
buckets leak at a constant rate. Running async jobs add a standing load to their account.
Utilisation = level / capacity. At 100 % the bucket blocks calls until it has drained to
70 %. Times are nominal: real seconds / time_scale.

The insights job load: every unfinished async job (queued or running) holds
100 / `account_job_slots` % of its account's insights capacity and 100 / `app_job_slots` % of
the app's. `x-fb-ads-insights-throttle` reports the larger of the call bucket and the job load,
and a new job that would take either past 100 % is refused (graph.py).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .world import Limits

RECOVER_TO = 0.7


@dataclass
class Bucket:
    capacity: float
    leak: float
    level: float = 0.0
    at: float = 0.0
    blocked_until: float = 0.0

    def drain(self, now: float) -> None:
        if now > self.at:
            self.level = max(0.0, self.level - (now - self.at) * self.leak)
            self.at = now

    def pct(self, extra: float = 0.0) -> float:
        return 100.0 * (self.level + extra) / self.capacity

    def blocked_for(self, now: float) -> float:
        return max(0.0, self.blocked_until - now)

    def pour(self, now: float, cost: float, extra: float = 0.0) -> None:
        self.level += cost
        if self.level + extra >= self.capacity and self.blocked_until <= now:
            target = RECOVER_TO * self.capacity
            self.blocked_until = now + (self.level + extra - target) / self.leak


class Throttle:
    """Per-account and per-app utilisation; also produces Meta's usage headers."""

    def __init__(self, limits: Limits, time_scale: float, clock: Callable[[], float] | None = None):
        self.limits = limits
        self.time_scale = time_scale
        self._clock = clock or time.monotonic
        self.app = Bucket(limits.app_throttle_capacity, limits.app_throttle_leak_per_second)
        self.accounts: dict[str, Bucket] = {}

    def now(self) -> float:
        """Nominal seconds."""
        return self._clock() / self.time_scale

    def _bucket(self, account: str) -> Bucket:
        b = self.accounts.get(account)
        if b is None:
            b = Bucket(self.limits.throttle_capacity, self.limits.throttle_leak_per_second)
            self.accounts[account] = b
        return b

    def blocked(self, account: str | None, running_jobs: int = 0) -> tuple[str, float] | None:
        """("account"|"app", nominal seconds left) if calls are currently refused."""
        now = self.now()
        self.app.drain(now)
        if self.app.blocked_for(now) > 0:
            return "app", self.app.blocked_for(now)
        if account is not None:
            b = self._bucket(account)
            b.drain(now)
            if b.blocked_for(now) > 0:
                return "account", b.blocked_for(now)
        return None

    def charge(self, account: str | None, cost: float, running_jobs: int = 0) -> None:
        now = self.now()
        self.app.drain(now)
        self.app.pour(now, cost)
        if account is not None:
            b = self._bucket(account)
            b.drain(now)
            b.pour(now, cost, running_jobs * self.limits.throttle_job_weight)

    def job_load_pct(self, unfinished: int, *, app: bool = False) -> float:
        """Percent of the account's (or the app's) insights capacity held by unfinished jobs."""
        slots = self.limits.app_job_slots if app else self.limits.account_job_slots
        return 100.0 * unfinished / max(1, slots)

    def headers(
        self,
        account: str | None,
        running_jobs: int,
        kind: str,
        *,
        unfinished_jobs: int = 0,
        app_unfinished_jobs: int = 0,
    ) -> dict[str, str]:
        """Meta's usage headers (ads insights throttle, business use case, ad account, app).

        ``unfinished_jobs``: the account's async jobs not finished yet (queued or running);
        ``app_unfinished_jobs``: the app's, across accounts. They count in
        x-fb-ads-insights-throttle only (the insights load), not in the call-rate headers.
        """

        now = self.now()
        self.app.drain(now)
        app_pct = min(100, round(self.app.pct()))
        app_insights_pct = max(
            app_pct, min(100, round(self.job_load_pct(app_unfinished_jobs, app=True)))
        )
        out = {
            "x-app-usage": json.dumps(
                {"call_count": app_pct, "total_cputime": app_pct // 2, "total_time": app_pct}
            )
        }
        acc_pct = acc_insights_pct = 0
        if account is not None:
            b = self._bucket(account)
            b.drain(now)
            acc_pct = min(100, round(b.pct(running_jobs * self.limits.throttle_job_weight)))
            eta = math.ceil(b.blocked_for(now) / 60.0)
            digits = account[4:] if account.startswith("act_") else account
            usage = {
                "type": kind,
                "call_count": acc_pct,
                "total_cputime": acc_pct // 2,
                "total_time": acc_pct,
                "estimated_time_to_regain_access": eta,
                "ads_api_access_tier": "standard_access",
            }
            out["x-business-use-case-usage"] = json.dumps({digits: [usage]})
            out["x-ad-account-usage"] = json.dumps(
                {
                    "acc_id_util_pct": acc_pct,
                    "reset_time_duration": math.ceil(b.level / b.leak) if b.level else 0,
                    "ads_api_access_tier": "standard_access",
                }
            )
            acc_insights_pct = max(acc_pct, min(100, round(self.job_load_pct(unfinished_jobs))))
        out["x-fb-ads-insights-throttle"] = json.dumps(
            {
                "app_id_util_pct": app_insights_pct,
                "acc_id_util_pct": acc_insights_pct,
                "ads_api_access_tier": "standard_access",
            }
        )
        return out
