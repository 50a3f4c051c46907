"""TapMetaInsights: our tap-facebook variant (Meta Ads insights via chunked async jobs)."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
import typing as t
import zoneinfo

from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError

from tap_meta_insights.client import GraphClient
from tap_meta_insights.config import CONFIG_SCHEMA, SettingError, Settings, parse_settings
from tap_meta_insights.errors import JobFailedError, TapError, redact
from tap_meta_insights.planning import (
    ContiguousProgress,
    incremental_start,
    plan_windows,
    reach_cutoff,
    split_at,
    without_reach,
)
from tap_meta_insights.scheduler import JobScheduler, PlannedWindow
from tap_meta_insights.streams import (
    AccountsStream,
    AdSetsStream,
    AdsStream,
    CampaignsStream,
    InsightsStream,
    InsightsWindowsStream,
)

if t.TYPE_CHECKING:
    from singer_sdk import Stream

ACCOUNT_FIELDS = "account_id,name,currency,timezone_name,account_status,created_time"


class _RedactFilter(logging.Filter):
    """Removes the access token from every log line (belt and braces)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, (self.secret,))
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class Run:
    """State of one sync: the client, the account lookups, the plan and the scheduler."""

    def __init__(self, tap: TapMetaInsights) -> None:
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
                    "completed_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                }
            )
        bookmark = self._progress[(stream.name, window.account_id)].complete(window.span)
        if bookmark is not None:
            state = stream.get_context_state({"account_id": window.account_id})
            state["replication_key"] = stream.replication_key
            state["replication_key_value"] = bookmark.isoformat()
            stream.state_manager.is_flushed = False
        stream._write_state_message()
        done = sum(1 for w in self.scheduler.windows if w.consumed)
        elapsed = int(time.monotonic() - self._started)
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


class TapMetaInsights(Tap):
    """Meta Ads insights: chunked, concurrent, resilient async report jobs."""

    name = "tap-meta-insights"
    config_jsonschema = CONFIG_SCHEMA

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._settings: Settings | None = None
        self._run: Run | None = None
        super().__init__(*args, **kwargs)
        token = self._settings.access_token if self._settings else ""
        token = token or str(self.config.get("access_token") or "")
        if token:
            for handler in logging.getLogger().handlers:
                handler.addFilter(_RedactFilter(token))

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # The SDK validates once, in __init__: strictly for a sync (this reads
        # access_token_file, once per process), leniently for discovery (no token needed).
        try:
            self._settings = parse_settings(self.config, require_credentials=raise_errors)
        except SettingError as exc:
            if raise_errors:
                raise ConfigValidationError(str(exc), errors=[str(exc)]) from None
            return [str(exc)]
        return super()._validate_config(raise_errors=raise_errors)

    @property
    def settings(self) -> Settings:
        """Validated settings (validated on first use when the SDK skipped validation)."""
        if self._settings is None:
            try:
                self._settings = parse_settings(self.config, require_credentials=False)
            except SettingError:
                # Discovery must work with partial config: fall back to defaults for the plan.
                safe = {k: v for k, v in self.config.items() if k in ("reports",)}
                safe["start_date"] = dt.date.today().isoformat()
                self._settings = parse_settings(safe, require_credentials=False)
        return self._settings

    @property
    def run(self) -> Run:
        """The sync's run (created on first use)."""
        if self._run is None:
            self._run = Run(self)
        return self._run

    def discover_streams(self) -> list[Stream]:
        """Object streams, insights_windows and one insights stream per report."""
        streams: list[Stream] = [
            AccountsStream(self),
            CampaignsStream(self),
            AdSetsStream(self),
            AdsStream(self),
            InsightsWindowsStream(self),
        ]
        streams.extend(InsightsStream(self, report) for report in self.settings.reports)
        return streams

    @classmethod
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:  # type: ignore[override]
        """Run the tap; a fatal error is one actionable log line and exit code 1."""
        try:
            super().invoke(*args, **kwargs)
        except TapError as exc:  # fatal, or retries exhausted: one line, no traceback
            cls.logger.error("%s", exc)
            sys.exit(1)


if __name__ == "__main__":
    TapMetaInsights.cli()
