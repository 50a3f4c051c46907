"""The sandbox's state: world, clock, metrics cache, jobs, faults, throttle and counters."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from .faults import FaultBook
from .hashing import h64
from .insights import InsightsQuery, QueryResult
from .insights import compute as compute_query
from .jobs import JobRunner
from .metrics import MetricsStore
from .throttle import Throttle
from .world import World, act_id, default_now, parse_instant

SYNC_CACHE_SIZE = 32


@dataclass
class Clock:
    """The sandbox's notion of now. It does not tick on its own; move it via the admin API."""

    now: datetime
    version: int = 0

    def set(self, value: str | datetime) -> None:
        self.now = parse_instant(value)
        self.version += 1

    def advance(self, days: float = 0, seconds: float = 0) -> None:
        self.now = self.now + timedelta(days=days, seconds=seconds)
        self.version += 1


@dataclass
class Counters:
    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    rows_served: int = 0
    throttled: dict[str, int] = field(default_factory=dict)  # rate-limit errors by code

    def count(self, endpoint: str, status: int) -> None:
        by_status = self.requests.setdefault(endpoint, {})
        by_status[str(status)] = by_status.get(str(status), 0) + 1

    def count_throttled(self, code: int) -> None:
        self.throttled[str(code)] = self.throttled.get(str(code), 0) + 1

    def reset(self) -> None:
        self.requests.clear()
        self.rows_served = 0
        self.throttled.clear()


class Sandbox:
    """Everything the HTTP layer needs; one instance per running server."""

    def __init__(self, world: World, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.world = world
        self.time_scale = time_scale
        self.clock = Clock(world.now or default_now())
        self.store = MetricsStore(world.seed)
        self.faults = FaultBook()
        self.throttle = Throttle(world.limits, time_scale)
        self.counters = Counters()
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="meta-sandbox")
        self.jobs = JobRunner(
            world.limits,
            time_scale,
            self.compute,
            self.capacity_of,
            lambda: self.clock.now,
            lambda: self.clock.version,
        )
        self._sync_cache: OrderedDict[tuple[InsightsQuery, int], QueryResult] = OrderedDict()
        self._lock = threading.Lock()
        self._job_seq = 0
        self.restatements: list[dict[str, Any]] = []
        self._trace_seq = 0

    def capacity_of(self, account: str) -> int:
        acct = self.world.accounts.get(account)
        return acct.capacity if acct else 4

    async def compute(self, q: InsightsQuery) -> tuple[QueryResult, int]:
        """Rows of a query as of the current clock (computed in a worker thread)."""
        now, version = self.clock.now, self.clock.version
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(
            self.executor, compute_query, self.world, self.store, q, now
        )
        return rows, version

    async def compute_cached(self, q: InsightsQuery) -> QueryResult:
        key = (q, self.clock.version)
        hit = self._sync_cache.get(key)
        if hit is not None:
            self._sync_cache.move_to_end(key)
            return hit
        rows, version = await self.compute(q)
        self._sync_cache[(q, version)] = rows
        while len(self._sync_cache) > SYNC_CACHE_SIZE:
            self._sync_cache.popitem(last=False)
        return rows

    def clock_changed(self) -> None:
        self.store.forget_recent()
        self._sync_cache.clear()

    def restate(self, rule: dict[str, Any]) -> dict[str, Any]:
        """Remove the delivery of an ad (or of every ad of an ad set, campaign or account) on
        the days ``since``..``until`` (default: every day), retroactively: as when Meta restates
        numbers or an ad is deleted, insights and truth no longer return those rows, and the
        parents' sums shrink with them. Report runs computed earlier keep their results."""
        kinds = [k for k in ("ad", "adset", "campaign", "account") if rule.get(k)]
        unknown = set(rule) - {"ad", "adset", "campaign", "account", "since", "until"}
        if len(kinds) != 1 or unknown:
            raise ValueError(
                "restate takes exactly one of ad, adset, campaign, account (an id), "
                f"and optional since/until (YYYY-MM-DD); got {sorted(rule)}"
            )
        kind, target = kinds[0], str(rule[kinds[0]])
        if kind == "account":
            target = act_id(target)
        since = date.fromisoformat(str(rule["since"])) if rule.get("since") else date.min
        until = date.fromisoformat(str(rule["until"])) if rule.get("until") else date.max
        if until < since:
            raise ValueError(f"until {until} is before since {since}")
        field_of = {"ad": "id", "adset": "adset_id", "campaign": "campaign_id"}
        ads = [
            ad
            for ad in self.world.ads.values()
            if (f"act_{ad.account_id}" if kind == "account" else getattr(ad, field_of[kind]))
            == target
        ]
        if not ads:
            raise ValueError(f"unknown {kind} {target!r}")
        with self._lock:
            for ad in ads:
                ad.pauses = tuple(sorted((*ad.pauses, (since, until))))
            self.restatements.append(
                {
                    kind: target,
                    "since": None if since == date.min else since.isoformat(),
                    "until": None if until == date.max else until.isoformat(),
                    "ads": [ad.id for ad in ads],
                }
            )
        for account_id in {f"act_{ad.account_id}" for ad in ads}:
            self.store.forget_account(account_id)
        self._sync_cache.clear()
        self.clock.version += 1  # a report run still computing recomputes its results
        return self.restatements[-1]

    def new_job_id(self) -> str:
        with self._lock:
            while True:
                self._job_seq += 1
                jid = f"6{h64(self.world.seed, 'report_run', self._job_seq) % 10**15:015d}"
                if jid not in self.jobs.jobs:
                    return jid

    def trace_id(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
        with self._lock:
            self._trace_seq += 1
            n = h64(self.world.seed, "trace", self._trace_seq)
        return "A" + "".join(alphabet[(n >> (6 * i)) & 63] for i in range(10))

    def stats(self) -> dict[str, Any]:
        js = self.jobs.stats
        return {
            "requests": self.counters.requests,
            "jobs_created": js.created,
            "jobs_completed": js.completed,
            "jobs_failed": js.failed,
            "jobs_running": sum(
                1 for j in self.jobs.jobs.values() if j.status in ("Job Started", "Job Running")
            ),
            "rows_served": self.counters.rows_served,
            "throttled": dict(self.counters.throttled),
            "throttled_total": sum(self.counters.throttled.values()),
            "service_seconds": round(js.service_seconds, 6),
            "lower_bound_seconds": round(self.jobs.lower_bound_seconds(), 6),
            "per_account": {
                a: {
                    "service_seconds": round(js.per_account.get(a, 0.0), 6),
                    "capacity": self.capacity_of(a),
                    "peak_unfinished_jobs": js.peak_unfinished.get(a, 0),
                }
                for a in {**js.per_account, **js.peak_unfinished}
            },
            "time_scale": self.time_scale,
        }

    def reset_stats(self) -> None:
        self.counters.reset()
        self.jobs.stats.reset()

    async def close(self) -> None:
        await self.jobs.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
