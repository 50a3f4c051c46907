"""The one HTTP client of the tap: auth, retries, throttle tracking, paging, redaction."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import typing as t
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from tap_meta_insights.concurrency import Reading
from tap_meta_insights.errors import (
    ErrorKind,
    GraphError,
    JobFailedError,
    RetryableError,
    TapFatalError,
    TooMuchDataError,
    classify,
    fatal_message,
    redact,
)

if t.TYPE_CHECKING:
    from tap_meta_insights.settings import Settings

USER_AGENT = "tap-meta-insights"
APP_CODES = frozenset({4, 17})  # rate limits of the app or the user, not of one account
RATE_LIMIT_BASE_SECONDS = 15.0
TRANSIENT_BASE_SECONDS = 2.0
MIN_PAGE_SIZE = 10


class Throttle:
    """Latest utilisation Meta reported in its usage headers (percent, 0-100), per ad account.

    A reading is kept under the account the request was about (None for a request about no
    account, and for the app's own figure, which every response carries), with the time it
    was read; readings older than ``stale_after`` seconds are ignored. Throttling errors are
    noted the same way (``note_throttled``), for the job limits of the scheduler.
    """

    def __init__(
        self,
        clock: t.Callable[[], float] = time.monotonic,
        stale_after: float = 60.0,
        max_hold: float = 900.0,
    ):
        self._lock = threading.Lock()
        self._clock = clock
        self.stale_after = stale_after
        self.max_hold = max_hold
        # (account or None, source) -> (pct, at)
        self._readings: dict[tuple[str | None, str], tuple[float, float]] = {}
        self._throttled: dict[str | None, float] = {}  # account or None (the app) -> at
        self.regain_until = 0.0

    def update(self, headers: t.Mapping[str, str], account: str | None = None) -> None:
        """Read x-fb-ads-insights-throttle, x-business-use-case-usage, x-ad-account-usage of a
        response to a request about ``account``."""
        now = self._clock()
        found: dict[tuple[str | None, str], float] = {}
        insights = _json_header(headers.get("x-fb-ads-insights-throttle"))
        if isinstance(insights, dict):
            app_pct = _num(insights.get("app_id_util_pct"))
            if app_pct is not None:
                found[(None, "insights.app_id_util_pct")] = app_pct
            acc_pct = _num(insights.get("acc_id_util_pct"))
            if acc_pct is not None:
                found[(account, "insights.acc_id_util_pct")] = acc_pct
        usage = _json_header(headers.get("x-ad-account-usage"))
        if isinstance(usage, dict) and _num(usage.get("acc_id_util_pct")) is not None:
            found[(account, "account")] = _num(usage.get("acc_id_util_pct")) or 0.0
        buc = _json_header(headers.get("x-business-use-case-usage"))
        regain_minutes = 0.0
        if isinstance(buc, dict):
            for business, entries in buc.items():
                for entry in entries if isinstance(entries, list) else []:
                    if not isinstance(entry, dict):
                        continue
                    pct = max(
                        _num(entry.get(k)) or 0.0
                        for k in ("call_count", "total_cputime", "total_time")
                    )
                    found[(account, f"buc.{business}.{entry.get('type')}")] = pct
                    regain_minutes = max(
                        regain_minutes, _num(entry.get("estimated_time_to_regain_access")) or 0.0
                    )
        with self._lock:
            for key, pct in found.items():
                self._readings[key] = (pct, now)
            if regain_minutes:
                hold = min(regain_minutes * 60, self.max_hold)
                self.regain_until = max(self.regain_until, now + hold)

    def note_throttled(self, account: str | None) -> None:
        """Meta answered a throttling error about ``account`` (None: the app, every account)."""
        with self._lock:
            self._throttled[account] = self._clock()

    def _concerns(self, key: str | None, account: str | None) -> bool:
        return account is None or key is None or key == account

    def utilisation(self, account: str | None = None) -> float:
        """Highest fresh reading about ``account`` or the app (every reading without one)."""
        now = self._clock()
        with self._lock:
            fresh = [
                pct
                for (key, _), (pct, at) in self._readings.items()
                if now - at <= self.stale_after and self._concerns(key, account)
            ]
        return max(fresh, default=0.0)

    def reading(self, account: str) -> Reading:
        """What Meta last said about ``account`` and the app, for its job limit."""
        now = self._clock()
        with self._lock:
            mine = [
                (pct, at)
                for (key, _), (pct, at) in self._readings.items()
                if self._concerns(key, account)
            ]
            throttled = max(self._throttled.get(account, 0.0), self._throttled.get(None, 0.0))
        fresh = [pct for pct, at in mine if now - at <= self.stale_after]
        return Reading(
            utilisation=max(fresh, default=0.0),
            at=max((at for _, at in mine), default=0.0),
            throttled_at=throttled,
        )


def _json_header(value: str | None) -> t.Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None


def _num(value: t.Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def strip_token(url: str) -> str:
    """Drop access_token from a URL's query (Meta puts it in paging.next)."""
    parts = urlsplit(url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"
    ]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class GraphClient:
    """Graph API calls with bearer auth, backoff and error classification.

    Safe to share between threads (one ``requests.Session`` per thread).
    """

    def __init__(
        self,
        settings: Settings,
        logger: logging.Logger,
        *,
        sleep: t.Callable[[float], None] = time.sleep,
        clock: t.Callable[[], float] = time.monotonic,
        session_factory: t.Callable[[], requests.Session] = requests.Session,
        timeout: float = 300.0,
    ) -> None:
        self.settings = settings
        self.logger = logger
        self.base_url = settings.graph_url
        self.sleep = sleep
        self.clock = clock
        self.throttle = Throttle(
            clock,
            stale_after=max(60.0, 12 * settings.poll_interval),
            max_hold=settings.max_retry_wait,
        )
        self._session_factory = session_factory
        self._local = threading.local()
        self.timeout = timeout
        self._secrets = (settings.access_token,)

    # -- plumbing -----------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._session_factory()
            session.headers["Authorization"] = f"Bearer {self.settings.access_token}"
            session.headers["User-Agent"] = USER_AGENT
            self._local.session = session
        return session

    def redact(self, text: str) -> str:
        """Redact the token from text."""
        return redact(text, self._secrets)

    def url(self, path_or_url: str) -> str:
        """Absolute URL for a Graph path (``act_1/insights``) or pass an absolute URL through."""
        if path_or_url.startswith(("http://", "https://")):
            return strip_token(path_or_url)
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def _backoff(self, attempt: int, base: float, regain_seconds: float = 0.0) -> float:
        cap = self.settings.max_retry_wait
        wait = min(cap, base * 2**attempt) * random.uniform(0.5, 1.0)
        return min(cap, max(wait, regain_seconds))

    # -- requests -----------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        params: t.Mapping[str, t.Any] | None = None,
        *,
        account: str | None = None,
        what: str = "calling the Graph API",
    ) -> dict:
        """One Graph call with retries; returns the decoded JSON object.

        Raises TapFatalError (fail fast), TooMuchDataError (caller splits) or
        RetryableError (retries exhausted).
        """
        url = self.url(path)
        encoded = {
            k: (json.dumps(v) if isinstance(v, (list, dict)) else v)
            for k, v in (params or {}).items()
        }
        retries = self.settings.max_retries
        attempt = 0
        while True:
            error: GraphError | None = None
            kind: ErrorKind | None = None
            detail = ""
            try:
                if method == "GET":
                    response = self._session().get(url, params=encoded, timeout=self.timeout)
                else:
                    response = self._session().post(url, data=encoded, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                kind, detail = ErrorKind.TRANSIENT, f"{type(exc).__name__}"
            else:
                self.throttle.update(response.headers, account)
                body: t.Any
                try:
                    body = response.json()
                except ValueError:
                    body = None
                if response.ok and isinstance(body, dict) and "error" not in body:
                    return body
                error = GraphError.from_response(response.status_code, body)
                kind = classify(error)
                detail = f"{error.label}: {error.message}"
            if kind is ErrorKind.TOO_MUCH_DATA:
                raise TooMuchDataError(self.redact(detail))
            if kind is ErrorKind.JOB_FAILED:
                raise JobFailedError(self.redact(detail))
            if kind in (ErrorKind.RATE_LIMIT, ErrorKind.TRANSIENT):
                if attempt >= retries:
                    raise RetryableError(
                        self.redact(f"gave up after {retries} retries while {what}: {detail}")
                    )
                base = (
                    RATE_LIMIT_BASE_SECONDS
                    if kind is ErrorKind.RATE_LIMIT
                    else TRANSIENT_BASE_SECONDS
                )
                regain = (error.regain_minutes * 60) if error else 0.0
                if kind is ErrorKind.RATE_LIMIT:
                    app_wide = account is None or (error is not None and error.code in APP_CODES)
                    self.throttle.note_throttled(None if app_wide else account)
                    regain = max(regain, self.throttle.regain_until - self.clock())
                wait = self._backoff(attempt, base, regain)
                self.logger.warning(
                    "%s while %s%s; retry %d/%d in %.1fs",
                    "Rate limited" if kind is ErrorKind.RATE_LIMIT else "Transient error",
                    what,
                    f" ({self.redact(detail)})" if detail else "",
                    attempt + 1,
                    retries,
                    wait,
                )
                self.sleep(wait)
                attempt += 1
                continue
            assert error is not None
            raise TapFatalError(
                self.redact(fatal_message(error, kind, account=account, what=what, params=params))
            )

    def get(self, path: str, params: t.Mapping[str, t.Any] | None = None, **kw: t.Any) -> dict:
        """GET with retries."""
        return self.request("GET", path, params, **kw)

    def post(self, path: str, params: t.Mapping[str, t.Any] | None = None, **kw: t.Any) -> dict:
        """POST with retries."""
        return self.request("POST", path, params, **kw)

    def iter_rows(
        self,
        path: str,
        params: t.Mapping[str, t.Any] | None = None,
        *,
        page_size: int | None = None,
        shrink_pages: bool = False,
        **kw: t.Any,
    ) -> t.Iterator[dict]:
        """Every row of a paged edge, one page in memory at a time.

        Follows the ``after`` cursor (keeping our host and page size) or, without one,
        ``paging.next`` (with any access_token removed). With ``shrink_pages``, a "too much
        data" answer halves the page size and retries the same page.
        """
        limit = page_size or self.settings.page_size
        query = dict(params or {})
        target = path
        while True:
            query["limit"] = limit
            try:
                body = self.get(target, query, **kw)
            except TooMuchDataError:
                if not shrink_pages or limit <= MIN_PAGE_SIZE:
                    raise
                limit = max(MIN_PAGE_SIZE, limit // 2)
                self.logger.info("Meta asked for smaller pages; page size now %d", limit)
                continue
            rows = body.get("data") or []
            yield from rows
            paging = body.get("paging") or {}
            next_url = paging.get("next")
            after = (paging.get("cursors") or {}).get("after")
            if not next_url or not rows:
                return
            if after:
                query["after"] = after
            else:
                target = next_url
                query = {}
