"""TapMetaInsights: our tap-facebook variant (Meta Ads insights via chunked async jobs)."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import typing as t

from tap_meta_insights.errors import SettingError, TapError, redact
from tap_meta_insights.run import Run
from tap_meta_insights.sdk_compat import OwnSettingsCheck
from tap_meta_insights.settings import CONFIG_SCHEMA, Settings, parse_settings
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


class TapMetaInsights(OwnSettingsCheck):
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

    def check_settings(self, *, strict: bool) -> str | None:
        """Parse the settings where the SDK validates them (once, in ``__init__``).

        Strictly for a sync (this reads access_token_file, once per process), leniently for
        discovery (no token needed).
        """
        try:
            self._settings = parse_settings(self.config, require_credentials=strict)
        except SettingError as exc:
            return str(exc)
        return None

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
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:
        """Run the tap; a fatal error is one actionable log line and exit code 1."""
        try:
            super().invoke(*args, **kwargs)
        except TapError as exc:  # fatal, or retries exhausted: one line, no traceback
            cls.logger.error("%s", exc)
            sys.exit(1)


if __name__ == "__main__":
    TapMetaInsights.cli()
