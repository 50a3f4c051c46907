"""A batch loaded as the records' own JSON text, typed by PostgreSQL.

copy_load.py makes every value of every record COPY-ready in Python: the records are decoded
(JSON floats as Decimal), each value converted and formatted, and PostgreSQL parses the text
again. On the loader benchmark that was about 65 µs of the loader's CPU per insights row, 0.3 of
what a bare parse-and-COPY costs (bench/README.md). Here the loader does not decode records at
all: the reader takes each RECORD's ``record`` as raw JSON text (msgspec.Raw, a scan of the
line, no objects made), COPYs it with the message's ``time_extracted``, ``version`` and arrival
time into a temp table of ``jsonb``, and one INSERT ... SELECT types it with
``jsonb_populate_record`` into the types copy_load gives the same columns (timestamptz for
timestamps, numeric for integers), then merges as copy_load does. The stored values are the
same (tests/test_loader_copy.py loads the same messages through both and target-postgres's own
INSERTs and compares the tables):

- JSON null or a missing property in a ``jsonb`` column is JSON ``null``, as SQLAlchemy binds
  None; a ``jsonb[]`` column is the array's items, each a ``jsonb`` value (a null item is JSON
  null), one dimension, as SQLAlchemy binds a list of JSON values.
- The last record of a key in a batch wins (``distinct on``, by arrival), as target-postgres
  keeps it.
- The SDK's metadata: ``_sdc_extracted_at`` from the message, ``_sdc_received_at`` and
  ``_sdc_sequence`` from the time the record was read (milliseconds, the sequence's own
  precision), ``_sdc_table_version`` from the message, ``_sdc_sync_started_at`` the sink's,
  ``_sdc_deleted_at`` from the record, ``_sdc_batched_at`` the time of the load.

A stream takes this path only when every column's type is one whose conversion is the same
(``JsonFormat.loadable``); the others, and every stream with stream maps, flattening,
validation or null-character sanitizing, keep the decoded path.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy.dialects.postgresql import JSONB

from target_postgres_window_state import copy_load

#: A record as loaded here: its place in the batch, its JSON text, the message's
#: ``time_extracted`` and ``version``, and the time it was read (epoch milliseconds:
#: ``_sdc_received_at`` and ``_sdc_sequence``).
Row = tuple[int, str, str | None, int | None, int]

#: Column types ``jsonb_populate_record`` converts as target-postgres's binding does, into the
#: temp types copy_load gives them (an aware timestamp to UTC, 12.0 into an integer column).
_TYPED = (
    sa.types.String,
    sa.types.Numeric,
    sa.types.Integer,
    sa.types.Date,
    sa.types.Time,
    sa.types.DateTime,
    sa.types.Boolean,
    sa.types.Uuid,
)

#: The SDK's metadata columns taken from the message (the table ``s``), not the record.
_FROM_MESSAGE = {
    "_sdc_extracted_at": sql.SQL("s.extracted_at::timestamptz"),
    "_sdc_received_at": sql.SQL("to_timestamp(s.received_ms / 1000.0)"),
    "_sdc_sequence": sql.SQL("s.received_ms"),
    "_sdc_table_version": sql.SQL("s.version"),
    "_sdc_sync_started_at": sql.Placeholder("sync_started_at"),
}


class MissingKeyError(ValueError):
    """Records of a batch lack a key property (the SDK's check, made on the batch)."""


class JsonFormat:
    """How a stream's records are typed from their JSON by PostgreSQL, from the column types
    target-postgres derives from the stream's schema; ``loadable`` when all of them can be."""

    def __init__(self, columns: list[sa.Column], stamp: str | None = None) -> None:
        self.row_format = copy_load.RowFormat(columns, stamp)
        self._values: list[sql.Composable] = []
        self.loadable = True
        for column in columns:
            if column.name == self.row_format.stamp:
                continue
            self._values.append(self._value(column))

    def _value(self, column: sa.Column) -> sql.Composable:
        name, kind = column.name, column.type
        if name in _FROM_MESSAGE:
            return _FROM_MESSAGE[name]
        field = sql.SQL("r.{}").format(sql.Identifier(name))
        if isinstance(kind, sa.types.ARRAY):
            if isinstance(kind.item_type, JSONB):
                item = sql.SQL("s.doc -> {}").format(sql.Literal(name))
                return sql.SQL(
                    "case jsonb_typeof({0}) when 'array' then"
                    " array(select jsonb_array_elements({0})) else {1} end"
                ).format(item, field)
            if isinstance(kind.item_type, sa.types.String):
                return field
        elif isinstance(kind, JSONB):
            return sql.SQL("coalesce({}, 'null'::jsonb)").format(field)
        elif isinstance(kind, _TYPED):
            return field
        self.loadable = False  # NOTYPE, arrays of other items, bytea, json, vectors...
        return field

    def select(self, temp_name: str, json_name: str, keys: t.Sequence[str]) -> sql.Composable:
        """The batch's rows, typed, the last of each key: a parenthesized query."""
        copied = self.row_format.copied
        order = [sql.SQL("r.{}").format(sql.Identifier(key)) for key in keys]
        return sql.SQL(
            "(select {distinct}{values} from {json} as s,"
            " jsonb_populate_record(null::{temp}, s.doc) as r{order})"
        ).format(
            distinct=sql.SQL("distinct on ({}) ").format(sql.SQL(", ").join(order))
            if keys
            else sql.SQL(""),
            values=sql.SQL(", ").join(
                sql.SQL("{} as {}").format(value, sql.Identifier(name))
                for value, name in zip(self._values, copied, strict=True)
            ),
            json=sql.Identifier(json_name),
            temp=sql.Identifier(temp_name),
            order=sql.SQL(" order by {}, s.ord desc").format(sql.SQL(", ").join(order))
            if keys
            else sql.SQL(""),
        )


def _missing_key(cursor: t.Any, json_name: str, keys: t.Sequence[str]) -> str | None:
    """A key property some record of the batch lacks (or has as null), if any."""
    if not keys:
        return None
    cursor.execute(
        sql.SQL("select {} from {} where {} limit 1").format(
            sql.SQL(", ").join(
                sql.SQL("coalesce(jsonb_typeof(doc -> {}), 'null') <> 'null'").format(
                    sql.Literal(k)
                )
                for k in keys
            ),
            sql.Identifier(json_name),
            sql.SQL(" or ").join(
                sql.SQL("coalesce(jsonb_typeof(doc -> {}), 'null') = 'null'").format(sql.Literal(k))
                for k in keys
            ),
        )
    )
    found = cursor.fetchone()
    if found is None:
        return None
    return next(key for key, present in zip(keys, found, strict=True) if not present)


def stage(cursor: t.Any, temp_name: str, rows: list[Row], keys: t.Sequence[str]) -> None:
    """COPY ``rows`` into a temp table of this transaction (``merge`` reads it), and check that
    every record has its ``keys``. Touches no table of the database: it may run while the batch
    before is still being merged."""
    json_name = _json_name(temp_name)
    cursor.execute(
        sql.SQL(
            "create temp table {} (ord integer, doc jsonb, extracted_at text, version bigint,"
            " received_ms bigint) on commit drop"  # ord from the loader: an identity cost 5 µs
        ).format(sql.Identifier(json_name))
    )
    statement = sql.SQL("copy {} from stdin").format(sql.Identifier(json_name))
    with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
        for row in rows:
            copy.write_row(row)
    if missing := _missing_key(cursor, json_name, keys):
        raise MissingKeyError(f"a record has no value for its key property '{missing}'")


def merge(
    cursor: t.Any,
    table: sql.Composable,
    temp_name: str,
    json_format: JsonFormat,
    keys: t.Sequence[str],
    on_conflict: bool,
    stamped_at: dt.datetime | None = None,
    sync_started_at: int | None = None,
) -> None:
    """Upsert the records ``stage`` copied into ``table`` (or append them without ``keys``), as
    copy_load.load does with decoded rows."""
    copy_load.create_temp(cursor, table, temp_name, json_format.row_format)  # the record type
    # The temp tables have no statistics: the planner's guess (1,000s of wide rows) would JIT
    # compile the query and spill the sort of a batch to disk.
    cursor.execute("set local jit = off")
    cursor.execute("set local work_mem = '256MB'")
    copy_load.merge(
        cursor,
        table,
        json_format.select(temp_name, _json_name(temp_name), keys),
        json_format.row_format,
        keys,
        on_conflict,
        stamped_at,
        {"sync_started_at": sync_started_at},
    )


def _json_name(temp_name: str) -> str:
    return f"{temp_name}_json"
