"""target-postgres that confirms state as each window is loaded, not every five minutes.

A Singer SDK target writes the tap's latest STATE only after it drains its sinks, and it drains
all of them only at the end of the input or when a record is five minutes old. A run killed before
that resumes from the previous run's state: every window is extracted again, hours of async jobs
on a large backfill. Our tap emits a STATE each time a window's last row has been written (the
bookmark moves), so draining on a changed STATE loads exactly the windows that state vouches for
and confirms them to Meltano, which saves it at once. ``state_confirm_seconds`` (default 10)
spaces the drains so a fast run does not pay a transaction per window: a kill redoes at most the
windows in flight plus that many seconds of loading.

Two more things make the load safe to read while it runs (dbt builds of other runs do):
- ``_sdc_batched_at`` is stamped when a batch is loaded, not when its first record arrived. dbt's
  incremental marts take rows loaded after their high-water mark; a batch stamped at its start
  but committed minutes later, after another run's newer rows were built, would be skipped
  forever. Stamped at load, it lags its commit by the drain alone, which the scheduled build's
  ``meta_load_lookback_minutes`` covers.
- ``insights_windows`` is loaded after the insights rows of the same drain, so no reader sees a
  window marked synced before its rows are there.
"""

from __future__ import annotations

import datetime
import time
import typing as t
from decimal import Decimal
from functools import cached_property

import msgspec
import sqlalchemy as sa
from psycopg import sql
from singer_sdk.helpers._compat import (
    date_fromisoformat,
    datetime_fromisoformat,
    time_fromisoformat,
)
from singer_sdk.helpers._typing import (
    get_datelike_property_type,
    handle_invalid_timestamp_in_record,
)
from singer_sdk.io_base import SingerReader
from target_postgres.sinks import PostgresSink
from target_postgres.target import TargetPostgres

from target_postgres_window_state import copy_load

DEFAULT_CONFIRM_SECONDS = 10.0
#: Advisory lock key of raw schema/table setup (one per database, shared by every loader).
SETUP_LOCK = "target-postgres: raw schema and table setup"
#: The tap's record of completed windows: loaded after the rows it vouches for.
WINDOWS_STREAM = "insights_windows"


class LoadStampedPostgresSink(PostgresSink):
    """PostgresSink whose ``_sdc_batched_at`` is the time the batch is loaded, and whose schema
    and table setup is serialized across loaders."""

    def setup(self) -> None:
        """Create the schema and table (or add columns) under a PostgreSQL advisory lock.

        target-postgres checks, then creates: loaders started together into an empty database
        (`sync --all --parallel 4`) raced on CREATE SCHEMA / CREATE TABLE (DuplicateSchema,
        DuplicateTable). The lock is held by a connection of its own for the few milliseconds of
        setup; whoever waited finds the table there. Loading itself runs in parallel."""
        with self.connector._engine.connect() as holder:  # the SDK's documented engine accessor
            holder.execute(sa.text("select pg_advisory_lock(hashtext(:key))"), {"key": SETUP_LOCK})
            try:
                super().setup()
            finally:
                holder.execute(
                    sa.text("select pg_advisory_unlock(hashtext(:key))"), {"key": SETUP_LOCK}
                )

    @cached_property
    def _datelike(self) -> dict[str, str]:
        """The schema's date, time and date-time properties (the schema of a sink never changes:
        a new SCHEMA makes a new sink)."""
        return {
            name: kind
            for name, prop in self.schema["properties"].items()
            if (kind := get_datelike_property_type(prop))
        }

    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: t.Any) -> None:
        """The SDK's parsing of date-like values, over the schema's date-like properties only.

        The SDK looks up every property of every record in the schema (34 per insights row) to
        find the two or three that are dates: half the SDK's time per record. Same parsing, same
        error treatment, same warning for a field the schema lacks."""
        if schema is not self.schema:
            super()._parse_timestamps_in_record(record, schema, treatment)
            return
        if not schema.get("additionalProperties", False):
            for key in record.keys() - schema["properties"].keys():
                if record[key] is not None and key not in self._warned_missing_fields:
                    self.logger.warning("No schema for record field '%s'", key)
                    self._warned_missing_fields.add(key)
        for key, kind in self._datelike.items():
            value = record.get(key)
            if value is None:
                continue
            try:
                if kind == "time":
                    record[key] = time_fromisoformat(value)
                elif kind == "date":
                    record[key] = date_fromisoformat(value)
                else:
                    record[key] = datetime_fromisoformat(value)
            except ValueError as ex:
                record[key] = handle_invalid_timestamp_in_record(
                    record, [key], value, kind, ex, treatment, self.logger
                )

    @cached_property
    def _row_format(self) -> copy_load.RowFormat:
        return copy_load.RowFormat(self.column_representation(self.schema))

    _on_conflict: bool | None = None

    def process_batch(self, context: dict) -> None:
        """Load the batch with COPY and one INSERT ... ON CONFLICT (copy_load.py), stamping
        ``_sdc_batched_at`` with the time of the load."""
        loaded_at = datetime.datetime.now(tz=datetime.timezone.utc)
        records = context.get("records") or []
        if self.append_only is False:  # the last version of each key, as target-postgres keeps
            keys = self.key_properties
            records = list({tuple(r[k] for k in keys): r for r in records}.values())
        if self.connector.sanitize_null_text_characters:
            records = [
                {k: self.sanitize_null_text_characters(v) for k, v in r.items()} for r in records
            ]
        rows = None
        if self._row_format.copyable:
            try:
                rows = self._row_format.rows(
                    records, {"_sdc_batched_at": loaded_at}
                )
            except copy_load.NotCopyable as reason:
                self.logger.info("Batch loaded by target-postgres's INSERT: %s", reason)
        if rows is None:
            for record in records:
                if "_sdc_batched_at" in record:
                    record["_sdc_batched_at"] = loaded_at.isoformat()
            super().process_batch({**context, "records": records})
            return
        with self.connector._connect() as connection, connection.begin():
            table = self.connector.prepare_table(  # as target-postgres: adds new columns
                full_table_name=self.full_table_name,
                schema=self.schema,
                primary_keys=self.key_properties,
                as_temp_table=False,
                connection=connection,
            )
            cursor = connection.connection.cursor()
            name = sql.Identifier(*(p for p in (table.schema, table.name) if p))
            if self._on_conflict is None and self.key_properties:
                self._on_conflict = copy_load.has_unique_key(cursor, name, self.key_properties)
            copy_load.load(
                cursor,
                name,
                self.temp_table_name,
                self._row_format,
                [] if self.append_only else self.key_properties,
                rows,
                bool(self._on_conflict),
            )


class MsgspecSingerReader(SingerReader):
    """The SDK's reader of Singer lines, decoding each as the SDK does (JSON floats as Decimal)
    at twice the speed; a line msgspec refuses (NaN, a lone surrogate) goes to the SDK's own."""

    _decoder = msgspec.json.Decoder(float_hook=Decimal)

    def deserialize_json(self, line: str) -> dict:
        try:
            return self._decoder.decode(line)
        except msgspec.DecodeError:
            return super().deserialize_json(line)


class TargetPostgresWindowState(TargetPostgres):
    """MeltanoLabs' target-postgres, draining (and so confirming) on each changed STATE."""

    name = "target-postgres"
    default_sink_class = LoadStampedPostgresSink
    config_jsonschema = {
        **TargetPostgres.config_jsonschema,
        "properties": {
            **TargetPostgres.config_jsonschema["properties"],
            "state_confirm_seconds": {
                "type": ["number"],
                "default": DEFAULT_CONFIRM_SECONDS,
                "description": (
                    "Least seconds between two confirmations of a changed STATE (0: every "
                    "STATE). A killed run redoes at most the windows in flight plus this much "
                    "loading."
                ),
            },
        },
    }

    message_reader_class = MsgspecSingerReader
    _last_confirmed = 0.0

    def _process_state_message(self, message_dict: dict) -> None:
        changed = message_dict.get("value") != self._latest_state
        super()._process_state_message(message_dict)
        interval = float(self.config.get("state_confirm_seconds", DEFAULT_CONFIRM_SECONDS))
        if changed and time.monotonic() - self._last_confirmed >= interval:
            self._drain_rows_first()
            self.drain_all()  # the windows the rows complete, then the latest STATE
            self._last_confirmed = time.monotonic()

    def process_endofpipe(self) -> None:
        self._drain_rows_first()
        super().process_endofpipe()

    def _drain_rows_first(self) -> None:
        for sink in list(self._sinks_active.values()):
            if sink.stream_name != WINDOWS_STREAM:
                self.drain_one(sink)
