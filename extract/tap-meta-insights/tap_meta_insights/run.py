"""Run: one sync's shared work: the client, the account lookups, the plan and the scheduler.

The tap creates it on first use; the streams ask it for windows and rows and report each
completed window, which moves that stream's bookmark.
"""

from __future__ import annotations

import datetime as dt
import time
import typing as t
import zoneinfo

from tap_meta_insights import progress
from tap_meta_insights.client import GraphClient
from tap_meta_insights.errors import JobFailedError
from tap_meta_insights.planning import (
    ContiguousProgress,
    incremental_start,
    plan_windows,
    reach_cutoff,
    split_at,
    without_reach,
)
from tap_meta_insights.scheduler import JobScheduler, PlannedWindow
from tap_meta_insights.sdk_compat import write_state
from tap_meta_insights.streams import InsightsStream, InsightsWindowsStream

if t.TYPE_CHECKING:
    import logging

    from singer_sdk import Stream

    from tap_meta_insights.settings import Settings

ACCOUNT_FIELDS = "account_id,name,currency,timezone_name,account_status,created_time"


class RunHost(t.Protocol):
    """What a run needs of its tap: the settings, the logger and the streams."""

    @property
    def settings(self) -> Settings: ...

    @property
    def logger(self) -> logging.Logger: ...

    @property
    def streams(self) -> t.Mapping[str, Stream]: ...


class Run:
    """State of one sync: the client, the account lookups, the plan and the scheduler."""

    def __init__(self, tap: RunHost) -> None:
        self.tap = tap
        self.settings = tap.settings
        self.logger = tap.logger
        self.client = GraphClient(self.settings, tap.logger)
        self.scheduler = JobScheduler(self.client, self.settings, tap.logger)
        self._accounts: dict[str, dict] = {}
        self._plan: dict[tuple[str, str], list[PlannedWindow]] = {}
        self._progress: dict[tuple[str, str], ContiguousProgress] = {}
        self._started = time.monotonic()
        self._rows = 0
        self._planned = False

    # -- accounts -------------------------------------------------------------------------
    def account(self, account_id: str) -> dict:
        """The account's name, currency and timezone (one lookup per run; fails fast)."""
        if account_id not in self._accounts:
            self._accounts[account_id] = self.client.get(
                account_id,
                {"fields": ACCOUNT_FIELDS},
                account=account_id,
                what="looking up the ad account",
            )
        return self._accounts[account_id]

    def today(self, account_id: str) -> dt.date:
        """Today in the account's timezone."""
        name = self.account(account_id).get("timezone_name") or "UTC"
        try:
            zone = zoneinfo.ZoneInfo(str(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.logger.warning("Unknown timezone %r for %s; using UTC", name, account_id)
            zone = zoneinfo.ZoneInfo("UTC")
        return dt.datetime.now(tz=zone).date()

    # -- planning -------------------------------------------------------------------------
    def ensure_planned(self) -> None:
        """Plan every window of every selected insights stream and start the scheduler."""
        if self._planned:
            return
        self._planned = True
        settings = self.settings
        for account_id in settings.account_ids:
            self.account(account_id)
        streams = [
            s for s in self.tap.streams.values() if isinstance(s, InsightsStream) and s.selected
        ]
        total_days = 0
        for stream in streams:
            for account_id in settings.account_ids:
                today = self.today(account_id)
                end = min(settings.end_date or today, today)
                bookmark = stream.bookmark(account_id)
                start = incremental_start(
                    start_date=settings.start_date,
                    bookmark=bookmark,
                    lookback_days=settings.lookback_days,
                    today=today,
                )
                spans = plan_windows(start, end, settings.chunk_months)
                old_report = without_reach(stream.report)
                cutoff = reach_cutoff(today)
                if old_report is not None and spans and spans[0].since < cutoff:
                    spans = split_at(spans, cutoff)
                    dropped = sorted(set(stream.report.fields) - set(old_report.fields))
                    self.logger.info(
                        "%s %s: %s not requested for days before %s (Meta serves reach-related "
                        "fields with breakdowns for 13 months); those rows have them null",
                        stream.name,
                        account_id,
                        ", ".join(dropped),
                        cutoff,
                    )
                self._progress[(stream.name, account_id)] = ContiguousProgress(spans, bookmark)
                self._plan[(stream.name, account_id)] = [
                    self.scheduler.add(
                        account_id,
                        old_report if old_report and span.since < cutoff else stream.report,
                        span,
                    )
                    for span in spans
                ]
                total_days += sum(s.days for s in spans)
                self.logger.info(
                    "Planned %s %s: %s..%s in %d window(s) of %d month(s)%s",
                    stream.name,
                    account_id,
                    start,
                    end,
                    len(spans),
                    settings.chunk_months,
                    f" (bookmark {bookmark}, lookback {settings.lookback_days} days)"
                    if bookmark
                    else "",
                )
        self.logger.info(
            "Plan: %d window(s), %d report-day(s), up to %d job(s) in flight",
            len(self.scheduler.windows),
            total_days,
            settings.max_concurrent_jobs,
        )
        self.scheduler.start()

    def windows(self, stream_name: str, account_id: str) -> list[PlannedWindow]:
        """Planned windows of one stream and account, in date order."""
        self.ensure_planned()
        return self._plan.get((stream_name, account_id), [])

    def rows(self, window: PlannedWindow) -> t.Iterator[dict]:
        """Every result row of a window's jobs, page by page (blocks until they are done).

        If a finished run's results turn out unreadable (2601, not transient), that job is run
        again and the window read again from its first run: the stream drops rows it already
        wrote (same key), so each key is still written once.
        """
        while True:
            try:
                for run_id in self.scheduler.wait(window):
                    reading = run_id
                    yield from self.client.iter_rows(
                        f"{run_id}/insights",
                        shrink_pages=True,
                        account=window.account_id,
                        what=f"reading results of {window.label}",
                    )
                return
            except JobFailedError as exc:
                self.scheduler.rerun(window, reading, str(exc))

    def window_done(
        self,
        stream: InsightsStream,
        window: PlannedWindow,
        rows: int,
        started_at: dt.datetime | None = None,
    ) -> None:
        """After the last row of a window: record it, move the bookmark, emit STATE, log.

        ``started_at``: when the stream began writing the window's rows (before the first).
        """
        self.scheduler.consumed(window)
        self._rows += rows
        windows_stream = self.tap.streams.get("insights_windows")
        if isinstance(windows_stream, InsightsWindowsStream):
            windows_stream.emit(
                {
                    "tenant_id": self.settings.tenant_id,
                    "account_id": window.account_id,
                    "report_name": window.report.name,
                    "level": window.report.level,
                    "date_start": window.span.since.isoformat(),
                    "date_stop": window.span.until.isoformat(),
                    "rows": rows,
                    "started_at": started_at.isoformat() if started_at else None,
                    "completed_at": dt.datetime.now(dt.UTC).isoformat(),
                }
            )
        bookmark = self._progress[(stream.name, window.account_id)].complete(window.span)
        if bookmark is not None:
            state = stream.get_context_state({"account_id": window.account_id})
            state["replication_key"] = stream.replication_key
            state["replication_key_value"] = bookmark.isoformat()
        write_state(stream, changed=bookmark is not None)
        done = sum(1 for w in self.scheduler.windows if w.consumed)
        elapsed = int(time.monotonic() - self._started)
        progress.window_done(
            stream=window.report.stream_name,
            account_id=window.account_id,
            date_start=window.span.since.isoformat(),
            date_stop=window.span.until.isoformat(),
            rows=rows,
            windows_done=done,
            windows_total=len(self.scheduler.windows),
            rows_total=self._rows,
        )
        self.logger.info(
            "Window done: %s %s %s: %d rows | windows %d/%d | jobs %d started, %d split | "
            "%d rows total | %d:%02d:%02d elapsed",
            window.report.stream_name,
            window.account_id,
            window.span,
            rows,
            done,
            len(self.scheduler.windows),
            self.scheduler.jobs_created,
            self.scheduler.jobs_split,
            self._rows,
            elapsed // 3600,
            elapsed // 60 % 60,
            elapsed % 60,
        )

    def close(self) -> None:
        """Stop the scheduler thread."""
        self.scheduler.stop()
