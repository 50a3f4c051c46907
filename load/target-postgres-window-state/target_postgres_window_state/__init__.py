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
- A drain does not load while a dbt build of the database runs (the `dbt-build` lock of
  docs/CONTRACTS.md, held shared for the whole drain: build_gate.py): a build reads the raw
  tables once per model, so rows committed between two models (the daily mart built without
  them, the levels mart with them) made the marts disagree and the build's reconciliation test
  fail, and a build between two streams of one drain saw ad sets without their campaigns. A
  build waits for the drain in flight; a drain waits for the build, then is stamped and loaded
  (the tap meanwhile keeps extracting, up to the read-ahead buffer).

And so that it never holds the tap back (bench/README.md, the loader benchmark): a thread reads
the input ahead of the loading (read_ahead.py); a full batch loads on a loader thread while the
next one is read (``_drain_full``: two at a time, the COPY of one beside the merge of the one
before, committed in order, and every STATE waits for them); records stay JSON text, typed by
PostgreSQL (json_load.py), or are decoded and COPYed (copy_load.py), and merged in one
INSERT ... ON CONFLICT.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import functools
import gc
import operator
import time
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from functools import cached_property

import msgspec
import sqlalchemy as sa
from psycopg import sql
from singer_sdk.exceptions import MissingKeyPropertiesError
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
from singer_sdk.mapper import SameRecordTransform
from target_postgres.sinks import PostgresSink
from target_postgres.target import TargetPostgres

from target_postgres_window_state import copy_load, json_load, read_ahead
from target_postgres_window_state.build_gate import GATE

DEFAULT_CONFIRM_SECONDS = 10.0
#: Batches loading at once: one merging while the next is COPYed (``_drain_full``).
LOADS_IN_FLIGHT = 2
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

    #: Metadata set as datetimes by _add_sdc_metadata_to_record (without validation).
    _STAMPED = ("_sdc_received_at", "_sdc_batched_at")
    _PARSERS: t.ClassVar = {
        "date": date_fromisoformat,
        "time": time_fromisoformat,
        "date-time": datetime_fromisoformat,
    }

    @cached_property
    def _datelike(self) -> list[tuple[str, str, t.Callable[[str], t.Any]]]:
        """The schema's date, time and date-time properties with their parsers (the schema of a
        sink never changes: a new SCHEMA makes a new sink)."""
        return [
            (name, kind, self._PARSERS[kind])
            for name, prop in self.schema["properties"].items()
            if (kind := get_datelike_property_type(prop))
            and not (name in self._STAMPED and self._validator is None)
        ]

    @cached_property
    def _properties(self) -> frozenset[str] | None:
        """The schema's properties, or None when it allows others (no warning then)."""
        if self.schema.get("additionalProperties", False):
            return None
        return frozenset(self.schema["properties"])

    def _add_sdc_metadata_to_record(self, record: dict, message: dict, context: dict) -> None:
        """The SDK's metadata columns, with the times it takes itself as datetimes rather than
        ISO strings parsed right back (``_sdc_batched_at`` is set again when loaded); as strings
        when records are validated (against a schema that says string)."""
        if self._validator is not None:
            super()._add_sdc_metadata_to_record(record, message, context)
            return
        now = datetime.datetime.now(tz=datetime.UTC)
        record["_sdc_extracted_at"] = message.get("time_extracted")
        record["_sdc_received_at"] = now
        record["_sdc_batched_at"] = context.get("batch_start_time") or now
        record["_sdc_deleted_at"] = record.get("_sdc_deleted_at")
        record["_sdc_sequence"] = round(time.time() * 1000)
        record["_sdc_table_version"] = message.get("version")
        record["_sdc_sync_started_at"] = self.sync_started_at

    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: t.Any) -> None:
        """The SDK's parsing of date-like values, over the schema's date-like properties only.

        The SDK looks up every property of every record in the schema (34 per insights row) to
        find the three that are dates: half its time per record. Same parsing, same error
        treatment, same warning for a field the schema lacks."""
        if schema is not self.schema:
            super()._parse_timestamps_in_record(record, schema, treatment)
            return
        self._warn_unknown_fields(record)
        for key, kind, parse in self._datelike:
            value = record.get(key)
            if value is None:
                continue
            try:
                record[key] = parse(value)
            except ValueError as ex:
                record[key] = handle_invalid_timestamp_in_record(
                    record, [key], value, kind, ex, treatment, self.logger
                )

    def _warn_unknown_fields(self, record: dict) -> None:
        """The SDK's warning, once per field, for a non-null field the schema lacks."""
        if self._properties is not None and not self._properties.issuperset(record):
            for key in record.keys() - self._properties:
                if record[key] is not None and key not in self._warned_missing_fields:
                    self.logger.warning("No schema for record field '%s'", key)
                    self._warned_missing_fields.add(key)

    def _fields_decoder(self) -> msgspec.json.Decoder | None:
        """A decoder that refuses a record with a field neither the schema nor a warning has
        named (None when the schema allows any): the SDK's warning for records kept as JSON."""
        if self._properties is None:
            return None
        names = sorted(self._properties | self._warned_missing_fields)
        fields = {f"f{i}": name for i, name in enumerate(names)}  # any name, as a valid field
        known = msgspec.defstruct(
            "KnownFields",
            [(field, msgspec.Raw, msgspec.Raw()) for field in fields],
            rename=fields,
            forbid_unknown_fields=True,
        )
        return msgspec.json.Decoder(known)

    @cached_property
    def _known_fields(self) -> msgspec.json.Decoder | None:  # replaced as fields are warned of
        return self._fields_decoder()

    @cached_property
    def _json_format(self) -> json_load.JsonFormat:
        columns = self.column_representation(self.schema)
        return json_load.JsonFormat(columns, stamp="_sdc_batched_at")

    @cached_property
    def loads_json(self) -> bool:
        """Whether this sink's records are kept as their JSON text and typed by PostgreSQL
        (json_load.py): every column's type allows it and nothing asks for decoded records."""
        return (
            bool(self.config.get("load_records_as_json", True))
            and self._json_format.loadable
            and not self.connector.sanitize_null_text_characters
            and self._validator is None
            and self.include_sdc_metadata_properties
        )

    def add_json_record(self, record: str, time_extracted: str | None, version: int | None) -> None:
        """A record as its JSON text (``loads_json``), with what the SDK's metadata takes from
        its message and the time it was read."""
        if (known := self._known_fields) is not None:
            try:
                known.decode(record)  # a scan: refuses a field the schema lacks
            except msgspec.ValidationError:
                self._warn_unknown_fields(msgspec.json.decode(record))
                self._known_fields = self._fields_decoder()
        records = (self._pending_batch or self._get_context({})).setdefault("records", [])
        records.append((len(records), record, time_extracted, version, round(time.time() * 1000)))

    @cached_property
    def _keys(self) -> frozenset[str]:
        return frozenset(self._key_properties)

    @cached_property
    def _row_format(self) -> copy_load.RowFormat:
        columns = self.column_representation(self.schema)
        return copy_load.RowFormat(columns, stamp="_sdc_batched_at")

    _on_conflict: bool | None = None

    def process_batch(self, context: dict) -> None:
        self.batch_load(context).run()

    def batch_load(self, context: dict) -> BatchLoad:
        """The batch made ready to load on this thread (where its records live), and its load.

        The load waits for any dbt build of the database (under the `dbt-build` lock held
        shared: the drain's, build_gate.py), then stamps ``_sdc_batched_at`` with the time of
        the load and loads with COPY and one INSERT ... ON CONFLICT (copy_load.py). A batch
        copy_load cannot format takes target-postgres's own load. A batch of JSON texts
        (``loads_json``) is typed and deduplicated by PostgreSQL (json_load.py)."""
        records = context.get("records") or []
        if self.loads_json:
            return BatchLoad(functools.partial(self._json_load, records), off_thread=True)
        if self.append_only is False:  # the last version of each key, as target-postgres keeps
            key = operator.itemgetter(*self.key_properties)
            records = list({key(r): r for r in records}.values())
        if self.connector.sanitize_null_text_characters:
            records = [
                {k: self.sanitize_null_text_characters(v) for k, v in r.items()} for r in records
            ]
        if self._row_format.copyable:
            try:
                rows = self._row_format.rows(records)
            except copy_load.NotCopyable as reason:
                self.logger.info("Batch loaded by target-postgres's INSERT: %s", reason)
            else:
                return BatchLoad(functools.partial(self._copy_load, rows), off_thread=True)
        load = functools.partial(self._load_as_target_postgres, context, records)
        return BatchLoad(load, off_thread=False)

    @contextlib.contextmanager
    def _loading(
        self, after: Future | None = None, stage: t.Callable[[t.Any], None] | None = None
    ) -> t.Iterator[tuple[t.Any, sql.Composable, datetime.datetime]]:
        """A transaction to load a batch in: (its cursor, the table made ready as
        target-postgres makes it, the time of the load), once ``stage`` (if any: work on the
        transaction's own temp tables) has run, ``after`` (the load of the batch before) has
        committed and no dbt build runs. It commits while the build is still held off."""
        with self.connector._connect() as connection:
            transaction = connection.begin()
            try:
                cursor = connection.connection.cursor()
                if stage is not None:
                    stage(cursor)  # beside the batch before's merge: PostgreSQL's other core
                if after is not None:
                    after.result()  # raises its error: this batch is not loaded either
                with GATE.held(self.connector._engine):
                    loaded_at = datetime.datetime.now(tz=datetime.UTC)  # once no build runs
                    table = self.connector.prepare_table(  # as target-postgres: adds columns
                        full_table_name=self.full_table_name,
                        schema=self.schema,
                        primary_keys=self.key_properties,
                        as_temp_table=False,
                        connection=connection,
                    )
                    name = sql.Identifier(*(p for p in (table.schema, table.name) if p))
                    if self._on_conflict is None and self.key_properties:
                        self._on_conflict = copy_load.has_unique_key(
                            cursor, name, self.key_properties
                        )
                    yield cursor, name, loaded_at
                    transaction.commit()
            except BaseException:
                if transaction.is_active:
                    transaction.rollback()
                raise

    @property
    def _merge_keys(self) -> list[str]:
        return [] if self.append_only else self.key_properties

    def _copy_load(self, rows: list[list[t.Any]], after: Future | None = None) -> None:
        with self._loading(after) as (cursor, table, loaded_at):
            copy_load.load(
                cursor,
                table,
                self.temp_table_name,
                self._row_format,
                self._merge_keys,
                rows,
                bool(self._on_conflict),
                loaded_at,
            )

    def _json_load(self, rows: list[json_load.Row], after: Future | None = None) -> None:
        def stage(cursor: t.Any) -> None:
            try:
                json_load.stage(cursor, self.temp_table_name, rows, self._merge_keys)
            except json_load.MissingKeyError as missing:
                raise MissingKeyPropertiesError(f"Stream '{self.stream_name}': {missing}") from None

        with self._loading(after, stage) as (cursor, table, loaded_at):
            json_load.merge(
                cursor,
                table,
                self.temp_table_name,
                self._json_format,
                self._merge_keys,
                bool(self._on_conflict),
                loaded_at,
                self.sync_started_at,
            )

    def _load_as_target_postgres(self, context: dict, records: list[dict]) -> None:
        """target-postgres's own load, on its own connection, under our lock (on the reading
        thread, once every load before it has committed: ``_drain_full``)."""
        with GATE.held(self.connector._engine):
            loaded_at = datetime.datetime.now(tz=datetime.UTC).isoformat()
            for record in records:
                if "_sdc_batched_at" in record:
                    record["_sdc_batched_at"] = loaded_at
            super().process_batch({**context, "records": records})


@dataclasses.dataclass(frozen=True)
class BatchLoad:
    """A batch's load: ``run`` loads it; ``off_thread``: it touches only its own rows and the
    database, so it may run on a loader thread while the sink fills again, and then takes the
    load of the batch before (a Future), whose commit it waits for before its own."""

    run: t.Callable[..., None]  # off_thread: (after: Future | None = None)
    off_thread: bool


class Envelope(msgspec.Struct):
    """A Singer message with its ``record`` left as JSON text (a scan, no objects made)."""

    type: str = ""
    stream: str = ""
    record: msgspec.Raw = msgspec.Raw()
    time_extracted: str | None = None
    version: int | None = None


class MsgspecSingerReader(SingerReader):
    """The SDK's reader of Singer lines, decoding each as the SDK does (JSON floats as Decimal)
    at twice the speed; a line msgspec refuses (NaN, a lone surrogate) goes to the SDK's own.
    The RECORDs of streams in ``json_streams`` are not decoded: their envelope goes to the
    stream's callback, the record as JSON text (json_load.py)."""

    _decoder = msgspec.json.Decoder(float_hook=Decimal)
    _envelope = msgspec.json.Decoder(Envelope)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: Stream name -> what takes its RECORD envelopes (set by the target as sinks change).
        self.json_streams: dict[str, t.Callable[[Envelope], None]] = {}

    def process_lines(self, file_input: t.IO[str] | None, callbacks: dict) -> t.Counter[str]:
        """The SDK's loop over the lines, read ahead by a thread (read_ahead.py): the tap keeps
        writing while a drain loads.

        Python's cycle collector runs every 700 new containers and walks all the young ones:
        with a batch of decoded records alive (ten thousand rows, a dozen dicts and lists each,
        none in a cycle) it cost a third of the decoding. It runs less often here (every 50,000),
        and what was loaded before the first line (modules, the SDK) is left out of it."""
        source = file_input or self.default_input
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        lines = self._json_records_taken(read_ahead.lines(source))
        counts = super().process_lines(lines, callbacks)  # type: ignore[arg-type]
        counts["RECORD"] += self._json_records
        return counts

    def _json_records_taken(self, lines: t.Iterable[str]) -> t.Iterator[str]:
        """``lines`` but the RECORDs of ``json_streams``, handed to their callback as read."""
        streams = self.json_streams
        for line in lines:
            if streams:
                try:
                    envelope = self._envelope.decode(line)
                except msgspec.DecodeError:  # ValidationError too: the SDK's path says what
                    envelope = None
                if (
                    envelope is not None
                    and envelope.type == "RECORD"
                    and (take := streams.get(envelope.stream)) is not None
                    and memoryview(envelope.record)[:1] == b"{"
                ):
                    take(envelope)
                    self._json_records += 1
                    continue
            yield line

    _json_records = 0

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
            "load_records_as_json": {
                "type": ["boolean"],
                "default": True,
                "description": (
                    "Keep each record as its JSON text and let PostgreSQL type it "
                    "(json_load.py: a third of the loader's CPU); false: decode and format "
                    "every value in the loader, as target-postgres does."
                ),
            },
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

    @cached_property
    def _plain_sinks(self) -> dict[str, LoadStampedPostgresSink]:
        """Streams whose records take the short path of _process_record_message, by name."""
        return {}

    def _process_schema_message(self, message_dict: dict) -> None:
        self._await_loading()  # a new sink's setup runs DDL: not beside a load
        super()._process_schema_message(message_dict)
        stream = message_dict["stream"]
        maps = self.mapper.stream_maps.get(stream, [])
        sink = self._sinks_active.get(stream)
        plain = (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == stream
            and not maps[0].flattening_enabled
            and isinstance(sink, LoadStampedPostgresSink)
            and sink._validator is None
            and sink.include_sdc_metadata_properties
        )
        reader = self.message_reader
        if plain:
            self._plain_sinks[stream] = sink
        else:
            self._plain_sinks.pop(stream, None)
        if plain and sink.loads_json and isinstance(reader, MsgspecSingerReader):
            if stream not in reader.json_streams:
                self.logger.info("Stream '%s': records loaded as JSON, typed by PostgreSQL", stream)
            reader.json_streams[stream] = functools.partial(self._process_json_record, sink)
        elif isinstance(reader, MsgspecSingerReader):
            reader.json_streams.pop(stream, None)

    def _process_json_record(self, sink: LoadStampedPostgresSink, envelope: Envelope) -> None:
        """A RECORD of a sink that ``loads_json``: what _process_record_message does, but the
        record stays JSON text until PostgreSQL types it (json_load.py)."""
        sink.tally_record_read()
        sink.add_json_record(
            bytes(envelope.record).decode(), envelope.time_extracted, envelope.version
        )
        self._record_added(sink)

    def _process_record_message(self, message_dict: dict) -> None:
        """The SDK's handling of a RECORD, without the steps that do nothing here.

        For each record the SDK copies it for its stream maps, transforms it with the identity
        map, looks its sink up three times and calls a validator wrapper, a preprocess hook and
        a debug log: a third of its time per record, for nothing when the stream has no stream
        map, no flattening and no validation (the project's settings). Such records go to their
        sink through the same sink methods in the same order; any other takes the SDK's path."""
        sink = self._plain_sinks.get(message_dict.get("stream"))  # type: ignore[arg-type]
        if sink is None or "record" not in message_dict:
            self._await_loading()  # the SDK's path drains a full sink on this thread
            super()._process_record_message(message_dict)
            return
        record = message_dict["record"]
        context = sink._get_context(record)
        sink._add_sdc_metadata_to_record(record, message_dict, context)
        sink._parse_timestamps_in_record(record, sink.schema, sink.datetime_error_treatment)
        if not sink._keys.issubset(record):
            sink._singer_validate_message(record)  # raises, naming the missing key
        sink.tally_record_read()
        sink.process_record(record, context)
        self._record_added(sink)

    def _record_added(self, sink: LoadStampedPostgresSink) -> None:
        """What follows a record added to its sink, on both short paths: the SDK's count, a
        full sink's drain, the SDK's drain by record age."""
        sink.record_counter_metric.increment()
        if sink.is_full:
            self.logger.info("Target sink for '%s' is full. Draining...", sink.stream_name)
            self._drain_full(sink)
        self._handle_max_record_age()

    #: Loads on the loader threads, oldest first: at most LOADS_IN_FLIGHT.
    _loads: collections.deque[Future]

    @cached_property
    def _loader(self) -> ThreadPoolExecutor:
        self._loads = collections.deque()
        return ThreadPoolExecutor(max_workers=LOADS_IN_FLIGHT, thread_name_prefix="load")

    def _drain_full(self, sink: LoadStampedPostgresSink) -> None:
        """A full sink's batch, loaded on a loader thread while this one reads on.

        Loading a batch is mostly waiting on PostgreSQL (COPY, the merge): done here, the
        reading stops meanwhile. Two loads run at a time: a batch's COPY (its stage) runs while
        the batch before merges, and each merges and commits only after the one before it
        committed, in the order drained (a stream's batches, the windows after the rows). The
        next STATE, SCHEMA or the end of input first waits for all of them and raises the first
        error: no STATE is confirmed before the rows it vouches for are committed. Memory: two
        batches loading, one filling."""
        loader, loads = self._loader, self._loads
        while len(loads) >= LOADS_IN_FLIGHT:
            loads.popleft().result()
        context = sink.start_drain()
        load = sink.batch_load(context)
        if load.off_thread:
            loads.append(loader.submit(load.run, loads[-1] if loads else None))
        else:
            self._await_loading()
            load.run()
        sink.mark_drained()

    def _await_loading(self) -> None:
        """Wait for the loads on the loader threads, if any; the first error is raised here."""
        if "_loader" not in self.__dict__:
            return
        loads = self._loads
        while loads:
            loads.popleft().result()

    def _process_activate_version_message(self, message_dict: dict) -> None:
        self._await_loading()
        super()._process_activate_version_message(message_dict)

    def _process_batch_message(self, message_dict: dict) -> None:
        self._await_loading()
        super()._process_batch_message(message_dict)

    def _write_state_message(self, state: dict) -> None:
        self._await_loading()  # a STATE only once the rows before it are committed
        super()._write_state_message(state)

    def _process_state_message(self, message_dict: dict) -> None:
        changed = message_dict.get("value") != self._latest_state
        super()._process_state_message(message_dict)
        interval = float(self.config.get("state_confirm_seconds", DEFAULT_CONFIRM_SECONDS))
        if changed and time.monotonic() - self._last_confirmed >= interval:
            self._await_loading()
            with self._drain_gate():
                self._drain_rows_first()
                self.drain_all()  # the windows the rows complete, then the latest STATE
            self._last_confirmed = time.monotonic()

    def process_endofpipe(self) -> None:
        self._await_loading()
        with self._drain_gate():
            self._drain_rows_first()
            super().process_endofpipe()

    def drain_all(self, *, is_endofpipe: bool = False) -> None:
        # Every whole drain (a changed STATE, the end of input, the SDK's record age) goes
        # through here. Not `_handle_max_record_age`: it runs after every record, and taking the
        # gate there cost a connection and three statements per record (4,400 rows/s).
        self._await_loading()
        with self._drain_gate():
            super().drain_all(is_endofpipe=is_endofpipe)

    def _drain_gate(self) -> t.ContextManager[None]:
        """The `dbt-build` lock held shared for a whole drain (build_gate.py): a build sees all
        of a drain's streams or none."""
        sink = next(iter(self._sinks_active.values()), None)
        if not isinstance(sink, LoadStampedPostgresSink) or not any(
            s.current_size for s in self._sinks_active.values()
        ):
            return contextlib.nullcontext()
        return GATE.held(sink.connector._engine)

    def _drain_rows_first(self) -> None:
        for sink in list(self._sinks_active.values()):
            if sink.stream_name != WINDOWS_STREAM:
                self.drain_one(sink)
