"""A batch loaded with COPY into a temp table and merged with one INSERT ... ON CONFLICT.

target-postgres 0.8.1 loads a batch with an executemany INSERT into a temp table, every value
through SQLAlchemy's bind processors and psycopg's pure-Python dumpers (a `jsonb[]` value is JSON
encoded element by element, then quoted with regular expressions), then merges it with an
anti-join INSERT and an UPDATE of every row, the rows it just inserted included. Its `use_copy`
setting keeps the same dumpers and writes aware timestamps in their own offset into `timestamp`
columns (`2024-10-21T01:00:00-04:00` lands as 01:00, not 05:00 UTC), so it is not used.

Here each value is made COPY-ready the way those processors would make it (jsonb as JSON text,
arrays as array literals, aware timestamps in UTC, as a UTC session stores them), psycopg's C code
writes the rows (on a thread of its own, psycopg's QueuedLibpqWriter, so PostgreSQL parses one
block while the next is formatted), and the merge is one INSERT ... ON CONFLICT on the table's
key; the load's time stamp (``_sdc_batched_at``) is a parameter of that INSERT, not a value sent
with every row. Raw tables, their columns, types and keys stay target-postgres's own (the sink's
setup creates them); this replaces only the loading of rows. docs/DECISIONLOG.md says why;
tests/test_loader_copy.py loads the same messages through both and compares the tables.
"""

from __future__ import annotations

import datetime as dt
import operator
import typing as t

import msgspec
import sqlalchemy as sa
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from target_postgres.connector import NOTYPE

_JSON = msgspec.json.Encoder(decimal_format="number")  # JSON floats arrive as Decimal
Converter = t.Callable[[t.Any], t.Any]


class NotCopyable(Exception):
    """A value this module does not format as target-postgres would: load the batch its way."""


def _json(value: t.Any) -> str:
    return _JSON.encode(value).decode()  # None too: SQLAlchemy's JSONB stores it as JSON null


def _notype(value: t.Any) -> t.Any:
    return _json(value) if isinstance(value, dict | list) else value


def _item(value: t.Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        raise NotCopyable("a nested list or object in a text array")
    return str(value)


def _escaped(item: str) -> str:
    return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quoted(items: str) -> str:
    """Array items joined by NUL (never in PostgreSQL text) as a literal of quoted items."""
    return "{" + _escaped(items).replace("\0", '","') + "}"


def _text_array(value: t.Any) -> t.Any:
    if not isinstance(value, list):
        return value  # a string is read as an array literal, as psycopg sent it
    if not value:
        return "{}"
    try:
        items = "\0".join(value)
    except TypeError:  # not all strings
        items = None
    if items is None or items.count("\0") != len(value) - 1:  # nulls, numbers, or NULs
        return "{" + ",".join("NULL" if v is None else _escaped(_item(v)) for v in value) + "}"
    return _quoted(items)


def _json_array(value: t.Any) -> t.Any:
    if not isinstance(value, list):
        return value
    if not value:
        return "{}"
    # One JSON text per line (a null item is JSON null too, as target-postgres stores it)
    return _quoted(_JSON.encode_lines(value).decode()[:-1].replace("\n", "\0"))


_PLAIN = (
    sa.types.String,
    sa.types.Numeric,
    sa.types.Date,
    sa.types.Time,
    sa.types.Boolean,
    sa.types.Uuid,
)
#: Column types PostgreSQL converts in the INSERT from the temp table, as it converted the values
#: target-postgres bound: an aware timestamp to UTC (the session's zone is UTC), a number like
#: 12.0 in an integer column rounded half away from zero.
_CAST_IN_TEMP = ((sa.types.DateTime, "timestamptz"), (sa.types.Integer, "numeric"))


class RowFormat:
    """The columns of a stream and how each value is made COPY-ready, from the column types
    target-postgres derives from the stream's schema."""

    def __init__(self, columns: list[sa.Column], stamp: str | None = None) -> None:
        self.names = [column.name for column in columns]
        #: The column stamped with the time of the load, in the INSERT (not sent per row).
        self.stamp = stamp if stamp in self.names else None
        #: The columns sent by COPY, in order: all but the stamp.
        self.copied = [name for name in self.names if name != self.stamp]
        self.temp_types: dict[str, str] = {}
        self._convert: list[tuple[int, Converter]] = []  # applied to non-null values
        self._json: list[int] = []  # JSON text of every value, null included
        self.copyable = True
        for index, column in enumerate(c for c in columns if c.name != self.stamp):
            kind = column.type
            cast = next((name for types, name in _CAST_IN_TEMP if isinstance(kind, types)), None)
            if cast:
                self.temp_types[column.name] = cast
            elif isinstance(kind, NOTYPE):
                self._convert.append((index, _notype))
            elif isinstance(kind, sa.types.ARRAY) and isinstance(kind.item_type, sa.types.JSON):
                self._convert.append((index, _json_array))
            elif isinstance(kind, sa.types.ARRAY) and isinstance(kind.item_type, sa.types.String):
                self._convert.append((index, _text_array))
            elif isinstance(kind, sa.types.JSON):
                self._json.append(index)
            elif not isinstance(kind, _PLAIN):
                # arrays of other types, bytea, vectors: target-postgres's way
                self.copyable = False

    def rows(self, records: t.Iterable[dict]) -> list[list[t.Any]]:
        """COPY rows of ``records`` (the columns of ``copied``)."""
        names, convert, json_columns = self.copied, self._convert, self._json
        every = operator.itemgetter(*names) if len(names) > 1 else None
        rows = []
        for record in records:
            try:
                row = list(every(record)) if every else [record.get(names[0])]
            except KeyError:  # a record without some of the properties
                row = list(map(record.get, names))
            for index, converter in convert:
                if row[index] is not None:
                    row[index] = converter(row[index])
            for index in json_columns:
                row[index] = _json(row[index])
            rows.append(row)
        return rows


def has_unique_key(cursor: t.Any, table: sql.Composable, keys: t.Sequence[str]) -> bool:
    """Whether ``table`` has a unique index (its primary key) on exactly ``keys``: the arbiter
    INSERT ... ON CONFLICT needs."""
    cursor.execute(
        sql.SQL(
            "select exists (select from pg_index i where i.indrelid = {}::regclass"
            " and i.indisunique and i.indpred is null and i.indexprs is null"
            " and i.indnatts = %(n)s and (select array_agg(a.attname::text order by a.attname)"
            " from pg_attribute a where a.attrelid = i.indrelid and a.attnum = any(i.indkey))"
            " = %(keys)s::text[])"
        ).format(sql.Literal(table.as_string(cursor))),
        {"n": len(keys), "keys": sorted(keys)},
    )
    return bool(cursor.fetchone()[0])


def create_temp(
    cursor: t.Any, table: sql.Composable, temp_name: str, row_format: RowFormat
) -> None:
    """A temp table (dropped at commit) with ``table``'s columns, typed as ``row_format`` says:
    the batch's rows, or (json_load.py) the type its records are read into."""
    temp_columns = sql.SQL(", ").join(
        sql.SQL("{0}::{1} as {0}").format(sql.Identifier(n), sql.SQL(row_format.temp_types[n]))
        if n in row_format.temp_types
        else sql.Identifier(n)
        for n in row_format.names
    )
    cursor.execute("set local time zone 'UTC'")
    cursor.execute(
        sql.SQL("create temp table {} on commit drop as select {} from {} with no data").format(
            sql.Identifier(temp_name), temp_columns, table
        )
    )


def load(
    cursor: t.Any,
    table: sql.Composable,
    temp_name: str,
    row_format: RowFormat,
    keys: t.Sequence[str],
    rows: list[list[t.Any]],
    on_conflict: bool,
    stamped_at: dt.datetime | None = None,
) -> None:
    """Upsert ``rows`` (unique on ``keys``) into ``table``, or append them when there are no
    keys. ``on_conflict``: the table has a unique index on ``keys``; without one, the rows that
    match on ``keys`` are updated and the others inserted, as target-postgres does. The format's
    ``stamp`` column of every row is ``stamped_at``."""
    create_temp(cursor, table, temp_name, row_format)
    copied = sql.SQL(", ").join(map(sql.Identifier, row_format.copied))
    statement = sql.SQL("copy {} ({}) from stdin").format(sql.Identifier(temp_name), copied)
    with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
        for row in rows:
            copy.write_row(row)
    merge(cursor, table, sql.Identifier(temp_name), row_format, keys, on_conflict, stamped_at)


def merge(
    cursor: t.Any,
    table: sql.Composable,
    rows: sql.Composable,
    row_format: RowFormat,
    keys: t.Sequence[str],
    on_conflict: bool,
    stamped_at: dt.datetime | None = None,
    params: dict[str, t.Any] | None = None,
) -> None:
    """Merge ``rows`` (a table, or a parenthesized query, with the format's columns; unique on
    ``keys``) into ``table``, as ``load`` says. ``params``: the query's own parameters."""
    names = row_format.names
    cols = sql.SQL(", ").join(map(sql.Identifier, names))

    def source(name: str) -> sql.Composable:  # a column's new value
        if name == row_format.stamp:
            return sql.Placeholder("stamped_at")
        return sql.SQL("s.{}").format(sql.Identifier(name))

    params = {**(params or {}), **({"stamped_at": stamped_at} if row_format.stamp else {})}
    insert = sql.SQL("insert into {} ({}) select {} from {} as s").format(
        table, cols, sql.SQL(", ").join(map(source, names)), rows
    )
    values = [name for name in names if name not in keys]
    if not keys:
        cursor.execute(insert, params or None)
    elif on_conflict:
        merged = sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(v)) for v in values
        )
        cursor.execute(
            sql.SQL("{} on conflict ({}) {}").format(
                insert,
                sql.SQL(", ").join(map(sql.Identifier, keys)),
                sql.SQL("do update set {}").format(merged) if values else sql.SQL("do nothing"),
            ),
            params or None,
        )
    else:
        match = sql.SQL(" and ").join(
            sql.SQL("t.{0} = s.{0}").format(sql.Identifier(key)) for key in keys
        )
        if values:
            update = sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(v), source(v)) for v in values
            )
            cursor.execute(
                sql.SQL("update {} as t set {} from {} as s where {}").format(
                    table, update, rows, match
                ),
                params or None,
            )
        cursor.execute(
            sql.SQL("{} where not exists (select from {} as t where {})").format(
                insert, table, match
            ),
            params or None,
        )
