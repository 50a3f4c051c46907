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

import sqlalchemy as sa
from target_postgres.sinks import PostgresSink
from target_postgres.target import TargetPostgres

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

    def process_batch(self, context: dict) -> None:
        loaded_at = datetime.datetime.now(tz=datetime.UTC).isoformat()
        for record in context.get("records") or []:
            if "_sdc_batched_at" in record:
                record["_sdc_batched_at"] = loaded_at
        super().process_batch(context)


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
