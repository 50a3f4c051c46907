"""Fault injection rules (POST /__sandbox/faults). See README.md for the rule kinds."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .world import act_id, parse_instant

KINDS = (
    "fail_jobs",
    "too_big",
    "http_500_every",
    "rate_limit",
    "expire_token",
    "revoke_account",
    "hang_jobs",
    "skip_jobs",
    "early_fetch",
)
TOO_BIG_MODES = ("job_failed", "error_1487534", "error_500")
RATE_LIMIT_CODES = (4, 17, 32, 613, *range(80000, 80009))


@dataclass
class Fault:
    id: str
    kind: str
    spec: dict[str, Any]
    remaining: int | None = None  # for counted rules
    seen: int = 0  # http_500_every: Graph requests seen since the rule was added
    fired: int = 0
    until_nominal: float = 0.0  # rate_limit: end, in nominal seconds
    at: datetime | None = None  # expire_token
    since: date | None = None  # too_big
    until: date | None = None

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, **self.spec, "fired": self.fired}


@dataclass
class FaultBook:
    """The active fault rules. Methods are called by the Graph handlers."""

    rules: list[Fault] = field(default_factory=list)
    next_id: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, spec: dict[str, Any], now: datetime, nominal_now: float) -> Fault:
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        spec = dict(spec)
        if "account" in spec:
            spec["account"] = act_id(spec["account"])
        f = Fault(id=f"fault-{self.next_id}", kind=kind, spec=spec)
        if kind in ("fail_jobs", "hang_jobs", "skip_jobs"):
            _require(spec, "account")
            f.remaining = int(spec.get("count", 1))
        elif kind == "early_fetch":
            _require(spec, "account")
            f.remaining = int(spec.get("count", 1))
            transient = spec.setdefault("transient", True)
            if not isinstance(transient, bool):
                raise ValueError("early_fetch transient must be true or false")
        elif kind == "too_big":
            _require(spec, "account")
            mode = spec.setdefault("mode", "job_failed")
            if mode not in TOO_BIG_MODES:
                raise ValueError(f"too_big mode must be one of {TOO_BIG_MODES}")
            f.since = date.fromisoformat(str(spec.get("since", "1970-01-01")))
            f.until = date.fromisoformat(str(spec.get("until", "9999-12-31")))
            spec.setdefault("max_days", 1)
            spec.setdefault("max_objects", 1)
        elif kind == "http_500_every":
            if int(spec.get("k", 0)) < 1:
                raise ValueError("http_500_every needs k >= 1")
        elif kind == "rate_limit":
            code = int(spec.setdefault("code", 80000))
            if code not in RATE_LIMIT_CODES:
                raise ValueError(f"rate_limit code must be one of {RATE_LIMIT_CODES}")
            f.until_nominal = nominal_now + float(spec.setdefault("seconds", 60))
        elif kind == "expire_token":
            _require(spec, "token")
            f.at = parse_instant(spec["at"]) if spec.get("at") else now
        elif kind == "revoke_account":
            _require(spec, "token")
            _require(spec, "account")
        with self.lock:
            self.next_id += 1
            self.rules.append(f)
        return f

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def _of(self, kind: str) -> list[Fault]:
        return [f for f in self.rules if f.kind == kind]

    def http_500(self) -> int | None:
        """Count a Graph request; return an error code (1 or 2) if it must fail with HTTP 500."""
        with self.lock:
            for f in self._of("http_500_every"):
                f.seen += 1
                if f.seen % int(f.spec["k"]) == 0:
                    f.fired += 1
                    return 1 if f.fired % 2 else 2
        return None

    def token_expired_at(self, token: str, now: datetime) -> datetime | None:
        for f in self._of("expire_token"):
            if f.spec["token"] == token and f.at is not None and now >= f.at:
                f.fired += 1
                return f.at
        return None

    def revoked(self, token: str, account: str) -> int | None:
        """Error code (200 or 10) if the token lost access to the account."""
        for f in self._of("revoke_account"):
            if f.spec["token"] == token and f.spec["account"] == account:
                f.fired += 1
                return int(f.spec.get("code", 200))
        return None

    def rate_limit(self, account: str | None, nominal_now: float) -> tuple[int, float] | None:
        """(code, nominal seconds left) if a rate_limit rule applies to this call."""
        for f in self._of("rate_limit"):
            target = f.spec.get("account")
            if target is not None and target != account:
                continue
            left = f.until_nominal - nominal_now
            if left > 0:
                f.fired += 1
                return int(f.spec["code"]), left
        return None

    def early_fetch(self, account: str) -> bool | None:
        """is_transient of the 2601 a results read must get now (None: no early_fetch rule)."""
        with self.lock:
            for f in self._of("early_fetch"):
                if f.spec["account"] == account and f.remaining:
                    f.remaining -= 1
                    f.fired += 1
                    return bool(f.spec["transient"])
        return None

    def take(self, kind: str, account: str) -> bool:
        """Consume one count of a fail_jobs / hang_jobs / skip_jobs rule for the account."""
        with self.lock:
            for f in self._of(kind):
                if f.spec["account"] == account and f.remaining:
                    f.remaining -= 1
                    f.fired += 1
                    return True
        return False

    def too_big(self, account: str, since: date, until: date, n_objects: int | None) -> str | None:
        """The failure mode if a too_big rule matches this insights request."""
        for f in self._of("too_big"):
            if f.spec["account"] != account or f.since is None or f.until is None:
                continue
            if until < f.since or since > f.until:
                continue
            days = (until - since).days + 1
            max_days = int(f.spec["max_days"])
            if max_days == 0:
                if n_objects is not None and n_objects <= int(f.spec["max_objects"]):
                    continue
            elif days <= max_days:
                continue
            f.fired += 1
            return str(f.spec["mode"])
        return None


def _require(spec: dict[str, Any], key: str) -> None:
    if not spec.get(key):
        raise ValueError(f"fault {spec.get('kind')} needs {key!r}")
