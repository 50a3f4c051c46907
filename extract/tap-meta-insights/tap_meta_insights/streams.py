"""Streams: one per insights report, insights_windows, and the account objects."""

from __future__ import annotations

import datetime as dt
import typing as t

from singer_sdk import Stream
from singer_sdk import typing as th
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_meta_insights.errors import TapFatalError
from tap_meta_insights.graph_api import ALL_STATUSES
from tap_meta_insights.records import (
    MissingKeyError,
    build_record,
    insights_schema,
    key_properties,
    record_key,
)
from tap_meta_insights.sdk_compat import WindowBookmarks, tap_of, write_record, write_schema

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_meta_insights.client import GraphClient
    from tap_meta_insights.reports import ReportSpec
    from tap_meta_insights.scheduler import PlannedWindow
    from tap_meta_insights.settings import Settings


class SyncRun(t.Protocol):
    """What the streams use of the sync's run (``tap_meta_insights.run.Run``)."""

    client: GraphClient

    def account(self, account_id: str) -> dict: ...

    def windows(self, stream_name: str, account_id: str) -> list[PlannedWindow]: ...

    def rows(self, window: PlannedWindow) -> t.Iterator[dict]: ...

    def window_done(
        self,
        stream: InsightsStream,
        window: PlannedWindow,
        rows: int,
        started_at: dt.datetime | None = None,
    ) -> None: ...


class StreamHost(t.Protocol):
    """What the streams use of their tap (``tap_meta_insights.tap.TapMetaInsights``)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def run(self) -> SyncRun: ...


class _MetaStream(Stream):
    """A stream of this tap."""

    @property
    def host(self) -> StreamHost:
        """The tap, with its settings and the sync's run."""
        return t.cast("StreamHost", tap_of(self))


class _AccountPartitioned(_MetaStream):
    """A stream partitioned (and bookmarked) per ad account."""

    @property
    def partitions(self) -> list[dict] | None:
        """One partition per configured account."""
        return [{"account_id": a} for a in self.host.settings.account_ids] or None


class InsightsStream(WindowBookmarks, _AccountPartitioned):
    """``insights_<report>``: daily rows of one report, one async job per planned window."""

    replication_key = "date"
    is_sorted = False
    # Records are built already typed (records.build_record): skip the SDK's per-value
    # conformance pass, which otherwise costs about as much as everything else together.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, report: ReportSpec) -> None:
        self.report = report
        super().__init__(tap, name=report.stream_name, schema=insights_schema(report))
        self.primary_keys = key_properties(report)

    # Our bookmark is the last day of the contiguous prefix of completed windows, moved by the
    # run as windows complete (WindowBookmarks: no per-record max-date tracking).
    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """No signpost: the bookmark is set per completed window."""
        return

    def bookmark(self, account_id: str) -> dt.date | None:
        """The stored bookmark of an account (last day known complete), if any."""
        state = self.get_context_state({"account_id": account_id})
        value = state.get("replication_key_value")
        if not value or state.get("replication_key") != self.replication_key:
            return None
        try:
            return dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            return None

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """Rows of every planned window of this account, window by window."""
        run = self.host.run
        account_id = str((context or {})["account_id"])
        tenant_id = self.host.settings.tenant_id
        for window in run.windows(self.name, account_id):
            # Taken before the window's first row is written (the SDK stamps each record's
            # time_extracted as it writes it): rows of this account, report and days extracted
            # before it belong to an earlier sync and are superseded by this window (staging
            # drops those this window no longer returned).
            started_at = dt.datetime.now(dt.UTC)
            seen: set[tuple] = set()
            rows = 0
            for row in run.rows(window):
                try:
                    record = build_record(
                        row, self.report, account_id=account_id, tenant_id=tenant_id
                    )
                except MissingKeyError as exc:
                    msg = (
                        f"{window.label}: Meta returned a row without {exc}; "
                        "the report cannot be keyed (check the report's fields and level)."
                    )
                    raise TapFatalError(msg) from None
                key = record_key(record, self.report)
                if key in seen:  # a split or retried job returned a row twice
                    continue
                seen.add(key)
                rows += 1
                yield record
            # Every row of the window has been written by now (the SDK writes a record
            # before asking for the next one): record the window and move the bookmark.
            run.window_done(self, window, rows, started_at)


class InsightsWindowsStream(_MetaStream):
    """``insights_windows``: one record per completed planned window (the synced days)."""

    name = "insights_windows"
    primary_keys = ("tenant_id", "account_id", "report_name", "date_start", "date_stop")
    schema = th.PropertiesList(
        th.Property("tenant_id", th.StringType, required=True),
        th.Property("account_id", th.StringType, required=True),
        th.Property("report_name", th.StringType, required=True),
        th.Property("level", th.StringType),
        th.Property("date_start", th.DateType, required=True),
        th.Property("date_stop", th.DateType, required=True),
        th.Property("rows", th.IntegerType),
        th.Property("started_at", th.DateTimeType),
        th.Property("completed_at", th.DateTimeType),
    ).to_dict()

    _schema_sent = False

    def emit(self, record: dict) -> None:
        """Write one record now (called by the insights streams as windows complete)."""
        if not self.selected:
            return
        if not self._schema_sent:
            write_schema(self)
            self._schema_sent = True
        write_record(self, record)

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """Records are written by the insights streams as their windows complete."""
        return iter(())


class AccountsStream(_MetaStream):
    """``accounts``: the configured ad accounts."""

    name = "accounts"
    primary_keys = ("tenant_id", "account_id")
    schema = th.PropertiesList(
        th.Property("tenant_id", th.StringType, required=True),
        th.Property("account_id", th.StringType, required=True),
        th.Property("id", th.StringType),
        th.Property("name", th.StringType),
        th.Property("account_status", th.IntegerType),
        th.Property("status", th.StringType),
        th.Property("currency", th.StringType),
        th.Property("timezone_name", th.StringType),
        th.Property("created_time", th.DateTimeType),
        th.Property("updated_time", th.DateTimeType),
    ).to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """One record per account (from the lookup done when planning)."""
        run = self.host.run
        for account_id in self.host.settings.account_ids:
            info = run.account(account_id)
            status = info.get("account_status")
            yield {
                "tenant_id": self.host.settings.tenant_id,
                "account_id": account_id,
                "id": str(info.get("account_id") or account_id.removeprefix("act_")),
                "name": info.get("name"),
                "account_status": _int_or_none(status),
                "status": _ACCOUNT_STATUS.get(_int_or_none(status) or -1),
                "currency": info.get("currency"),
                "timezone_name": info.get("timezone_name"),
                "created_time": info.get("created_time"),
                "updated_time": info.get("updated_time"),
            }


_ACCOUNT_STATUS = {
    1: "ACTIVE",
    2: "DISABLED",
    3: "UNSETTLED",
    7: "PENDING_RISK_REVIEW",
    8: "PENDING_SETTLEMENT",
    9: "IN_GRACE_PERIOD",
    100: "PENDING_CLOSURE",
    101: "CLOSED",
    201: "ANY_ACTIVE",
    202: "ANY_CLOSED",
}


def _int_or_none(value: t.Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class _ObjectStream(_AccountPartitioned):
    """Campaigns, ad sets or ads of each account: full table every run, paged."""

    edge: str
    parents: tuple[str, ...] = ()
    primary_keys = ("tenant_id", "id")

    @classmethod
    def object_schema(cls, *parents: str) -> dict:
        return th.PropertiesList(
            th.Property("tenant_id", th.StringType, required=True),
            th.Property("account_id", th.StringType, required=True),
            th.Property("id", th.StringType, required=True),
            th.Property("name", th.StringType),
            th.Property("status", th.StringType),
            th.Property("effective_status", th.StringType),
            th.Property("created_time", th.DateTimeType),
            th.Property("updated_time", th.DateTimeType),
            *(th.Property(p, th.StringType) for p in parents),
        ).to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """Every object of the account, one page in memory at a time."""
        run = self.host.run
        account_id = str((context or {})["account_id"])
        fields = [
            "id",
            "name",
            "status",
            "effective_status",
            "created_time",
            "updated_time",
            *self.parents,
        ]
        for row in run.client.iter_rows(
            f"{account_id}/{self.edge}",
            {"fields": ",".join(fields), "effective_status": list(ALL_STATUSES[self.edge])},
            account=account_id,
            what=f"listing {self.edge}",
        ):
            record = {k: row.get(k) for k in fields}
            record["id"] = str(row.get("id"))
            for parent in self.parents:
                record[parent] = None if row.get(parent) is None else str(row.get(parent))
            record["tenant_id"] = self.host.settings.tenant_id
            record["account_id"] = account_id
            yield record


class CampaignsStream(_ObjectStream):
    """``campaigns``."""

    name = "campaigns"
    edge = "campaigns"
    schema = _ObjectStream.object_schema()


class AdSetsStream(_ObjectStream):
    """``adsets`` (with campaign_id)."""

    name = "adsets"
    edge = "adsets"
    parents = ("campaign_id",)
    schema = _ObjectStream.object_schema("campaign_id")


class AdsStream(_ObjectStream):
    """``ads`` (with campaign_id and adset_id)."""

    name = "ads"
    edge = "ads"
    parents = ("campaign_id", "adset_id")
    schema = _ObjectStream.object_schema("campaign_id", "adset_id")
