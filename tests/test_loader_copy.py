"""The loader's own ways of loading a batch store exactly what MeltanoLabs' target-postgres stores
with its INSERTs: records kept as JSON text and typed by PostgreSQL (json_load.py, the default),
and decoded rows COPYed into a temp table (copy_load.py; `load_records_as_json: false`, and the
streams JSON cannot take). The same messages go through ours and target-postgres's, twice (the
second load changes, nulls and adds rows), and the tables must match column for column, but for
the load-time metadata. Values chosen to break a COPY formatter: tabs, newlines,
backslashes, quotes, braces and `\\N` in text, nulls everywhere, nulls inside arrays, nested and
unicode jsonb, exact decimals, integers sent as 12.0, timestamps with and without offsets."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from meta_elt import postgres
from tests.support import ROOT

LOADER = ROOT / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin"
OURS = LOADER / "target-postgres-window-state"
UPSTREAM = LOADER / "target-postgres"  # the same pinned package's own command
LOAD_TIME = ("_sdc_received_at", "_sdc_batched_at", "_sdc_sequence", "_sdc_sync_started_at")

SCHEMA = {
    "type": "SCHEMA",
    "stream": "kinds",
    "key_properties": ["tenant_id", "id"],
    "schema": {
        "type": "object",
        "properties": {
            "tenant_id": {"type": "string"},
            "id": {"type": "string"},
            "name": {"type": ["string", "null"]},
            "count": {"type": ["integer", "null"]},
            "amount": {"type": ["number", "null"]},
            "active": {"type": ["boolean", "null"]},
            "day": {"type": ["string", "null"], "format": "date"},
            "changed_at": {"type": ["string", "null"], "format": "date-time"},
            "breakdowns": {"type": ["object", "null"], "additionalProperties": True},
            "windows": {"type": ["array", "null"], "items": {"type": "string"}},
            "actions": {
                "type": ["array", "null"],
                "items": {"type": "object", "additionalProperties": True},
            },
        },
    },
}

#: A stream with a column type the COPY path leaves to target-postgres's INSERTs (an integer
#: array): loaded that way, with the load-time stamp all the same.
OTHER_SCHEMA = {
    "type": "SCHEMA",
    "stream": "others",
    "key_properties": ["id"],
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "counts": {"type": ["array", "null"], "items": {"type": "integer"}},
        },
    },
}
OTHERS = [{"id": "1", "counts": [1, 2, 3]}, {"id": "2", "counts": None}]

TRICKY_TEXT = 'tab\there, new\nline, cr\r, back\\slash, "quotes", {braces}, a,b, \\N, NULL, ä€😀'
FIRST = [
    {
        "tenant_id": "t1",
        "id": "1",
        "name": TRICKY_TEXT,
        "count": 1500,
        "amount": 11.66,
        "active": True,
        "day": "2024-02-29",
        "changed_at": "2024-10-21T01:00:00-0400",
        "breakdowns": {},
        "windows": ["1d_view", "7d_click", "28d_click"],
        "actions": [
            {"action_type": "link_click", "value": 7, "1d_view": 0, "7d_click": 7.5},
            {"action_type": 'q"uo\\te\t{x}', "value": 1.10},
        ],
    },
    {  # every nullable value null
        "tenant_id": "t1",
        "id": "2",
        "name": None,
        "count": None,
        "amount": None,
        "active": None,
        "day": None,
        "changed_at": None,
        "breakdowns": None,
        "windows": None,
        "actions": None,
    },
    {  # empty and null-holding values; an integer sent as 12.0; offsets and no offset
        "tenant_id": "t1",
        "id": "3",
        "name": "",
        "count": "12.0",
        "amount": "123456789012345678901234567890.123456789",
        "active": False,
        "day": "1999-12-31",
        "changed_at": "2024-10-21T01:00:00.123456Z",
        "breakdowns": {"age": "18-24", "nested": {"x": [1, None, "ü"]}, "q": 'a"b\\c'},
        "windows": [],
        "actions": [],
    },
    {
        "tenant_id": "t1",
        "id": "4",
        "name": "NULL",
        "count": "-12.5",
        "amount": "1E+2",
        "active": True,
        "day": "2024-01-01",
        "changed_at": "2024-03-31T02:30:00",
        "breakdowns": {"gender": "unknown"},
        "windows": ["a", None, "b,c", "{d}", 'e"f', "g\\h", "NULL", ""],
        "actions": [{"action_type": "x", "value": None}, None, {}],
    },
    {  # scalars in an array of objects; a field the schema lacks (ignored, with a warning)
        "tenant_id": "t1",
        "id": "6",
        "actions": [{"a": None}, "text", 3.25, True, None, {"b": [1, {"c": "d"}]}],
        "not_in_schema": {"x": 1},
    },
    # the same key twice in one batch: the last one is kept
    {"tenant_id": "t2", "id": "1", "name": "first version", "count": 1},
    {"tenant_id": "t2", "id": "1", "name": "second version", "count": 2},
]
SECOND = [
    {**FIRST[0], "name": "changed", "count": 1501, "actions": None, "windows": ["1d_view"]},
    {**FIRST[1], "name": "no longer null", "amount": 0.1, "breakdowns": {"age": "65+"}},
    {"tenant_id": "t1", "id": "5", "name": "new row", "changed_at": "2025-06-01T12:00:00+02:00"},
]


def messages(records: list[dict]) -> bytes:
    lines: list[dict] = [SCHEMA, OTHER_SCHEMA]
    for stream, rows in (("kinds", records), ("others", OTHERS)):
        lines += [
            {"type": "RECORD", "stream": stream, "record": record,
             "time_extracted": "2026-11-30T12:00:00.000001+00:00"}
            for record in rows
        ]  # fmt: skip
    lines.append({"type": "STATE", "value": {"bookmarks": {"kinds": {"n": len(records)}}}})
    # numbers as the tap writes them: exact decimals, not Python floats
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    for quoted in ('"12.0"', '"-12.5"', '"123456789012345678901234567890.123456789"', '"1E+2"'):
        text = text.replace(quoted, quoted.strip('"'))
    return text.encode()


def load(
    loader,
    schema: str,
    records: list[dict],
    server: postgres.Server,
    tmp_path,
    validate: bool = False,
    as_json: bool = True,
    succeeds: bool = True,
    **env: str,
) -> subprocess.CompletedProcess:
    config = tmp_path / f"{schema}.json"
    config.write_text(
        json.dumps(
            {"sqlalchemy_url": "postgresql+psycopg://", "default_target_schema": schema,
             "load_method": "upsert", "add_record_metadata": True, "validate_records": validate,
             "load_records_as_json": as_json}
        )
    )  # fmt: skip
    done = subprocess.run(
        [str(loader), "--config", str(config)],
        input=messages(records),
        env={
            "PATH": "/usr/bin:/bin",
            **server.libpq_env(),
            "TARGET_POSTGRES_LOGLEVEL": "INFO",
            **env,
        },
        capture_output=True,
        check=False,
        timeout=300,
    )
    assert (done.returncode == 0) is succeeds, done.stderr.decode()[-3000:]
    return done


@pytest.fixture
def schemas(pg_server: postgres.Server) -> Iterator[tuple[str, str]]:
    names = (f"copy_ours_{uuid.uuid4().hex[:8]}", f"copy_upstream_{uuid.uuid4().hex[:8]}")
    yield names
    with pg_server.connect(autocommit=True) as conn:
        for name in names:
            conn.execute(f'drop schema if exists "{name}" cascade')


def table(
    server: postgres.Server, schema: str, name: str = "kinds"
) -> tuple[list[tuple], list[tuple]]:
    """(the columns with their types, the rows as text but for the load-time metadata)."""
    with server.connect(autocommit=True) as conn:
        columns = conn.execute(
            "select column_name, data_type, udt_name, is_nullable from information_schema.columns"
            " where table_schema = %s and table_name = %s order by ordinal_position",
            (schema, name),
        ).fetchall()
        kept = ", ".join(f'"{c[0]}"::text' for c in columns if c[0] not in LOAD_TIME)
        rows = conn.execute(f'select {kept} from "{schema}"."{name}" order by 1, 2').fetchall()
        stamped = conn.execute(
            f'select count(*) from "{schema}"."{name}" where _sdc_batched_at is null'
        ).fetchone()
    assert stamped == (0,)
    return columns, rows


@pytest.mark.parametrize("as_json", [True, False], ids=["json-typed-by-postgres", "decoded"])
def test_copy_load_stores_what_target_postgres_stores(pg_server, schemas, tmp_path, as_json):
    ours, upstream = schemas
    log = ""
    for records in (FIRST, SECOND):
        done = load(OURS, ours, records, pg_server, tmp_path, as_json=as_json)
        load(UPSTREAM, upstream, records, pg_server, tmp_path)
        state = done.stdout.decode()
        assert json.loads(state.splitlines()[-1]) == {"bookmarks": {"kinds": {"n": len(records)}}}
        assert table(pg_server, ours) == table(pg_server, upstream)
        assert table(pg_server, ours, "others") == table(pg_server, upstream, "others")
        log += done.stderr.decode()
        assert ("Stream 'kinds': records loaded as JSON" in log) is as_json, log[-3000:]
        assert "Stream 'others': records loaded as JSON" not in log  # an integer array
    assert "No schema for record field 'not_in_schema'" in log
    columns, rows = table(pg_server, ours)
    by_key = {(row[0], row[1]): row for row in rows}
    names = [c[0] for c in columns if c[0] not in LOAD_TIME]
    value = dict(zip(names, by_key[("t1", "1")], strict=True))
    assert len(rows) == 7  # 6 keys after the first load, 1 more after the second
    assert value["name"] == "changed" and value["count"] == "1501"  # upserted
    assert value["actions"] is None and value["windows"] == "{1d_view}"
    assert value["changed_at"] == "2024-10-21 05:00:00"  # the instant, in UTC
    assert dict(zip(names, by_key[("t2", "1")], strict=True))["name"] == "second version"
    odd = dict(zip(names, by_key[("t1", "4")], strict=True))
    assert odd["count"] == "-13"
    assert odd["windows"] == '{a,NULL,"b,c","{d}","e\\"f","g\\\\h","NULL",""}'
    assert dict(zip(names, by_key[("t1", "3")], strict=True))["name"] == ""


def test_validated_records_load_as_target_postgres_stores_them(pg_server, schemas, tmp_path):
    """With `validate_records` on (target-postgres's default), records take the SDK's own path
    and are validated with their metadata as the SDK writes it; then loaded the same way."""
    ours, upstream = schemas
    for records in (FIRST, SECOND):
        valid = [  # no 12.0 integers, no scalars in an array of objects
            r for r in records if not isinstance(r.get("count"), str) and r["id"] != "6"
        ]
        load(OURS, ours, valid, pg_server, tmp_path, validate=True)
        load(UPSTREAM, upstream, valid, pg_server, tmp_path, validate=True)
        assert table(pg_server, ours) == table(pg_server, upstream)
    assert len(table(pg_server, ours)[1]) == 4


def test_copy_load_upserts_into_a_table_without_a_primary_key(pg_server, schemas, tmp_path):
    """A raw table whose key is not a unique index (created by hand, or an older layout): rows
    matching on the stream's key are updated, the others inserted, as target-postgres does."""
    ours, upstream = schemas
    for schema in schemas:
        loader = OURS if schema == ours else UPSTREAM
        load(loader, schema, FIRST, pg_server, tmp_path)
        with pg_server.connect(autocommit=True) as conn:
            conn.execute(f'alter table "{schema}".kinds drop constraint kinds_pkey')
        load(loader, schema, SECOND, pg_server, tmp_path)
    assert table(pg_server, ours) == table(pg_server, upstream)
    assert len(table(pg_server, ours)[1]) == 7


def test_copy_load_stores_timestamps_in_utc_whatever_the_session_zone(pg_server, schemas, tmp_path):
    """docs/CONTRACTS.md: timestamps are UTC. A server (here the session, through libpq's PGTZ)
    in another zone changes nothing."""
    ours, _ = schemas
    load(OURS, ours, FIRST, pg_server, tmp_path, PGTZ="Asia/Tokyo")
    with pg_server.connect(autocommit=True) as conn:
        row = conn.execute(
            f'select changed_at::text, _sdc_extracted_at::text from "{ours}".kinds'
            " where tenant_id = 't1' and id = '1'"
        ).fetchone()
    assert row == ("2024-10-21 05:00:00", "2026-11-30 12:00:00.000001")


@pytest.mark.parametrize("as_json", [True, False], ids=["json-typed-by-postgres", "decoded"])
def test_a_record_without_its_key_fails_the_load_naming_the_key(
    pg_server, schemas, tmp_path, as_json
):
    """As the SDK checks each record: the load fails, names the key property, and nothing of
    the batch is stored (nor its STATE confirmed)."""
    ours, _ = schemas
    records = [FIRST[0], {"tenant_id": "t1", "name": "no id"}]
    done = load(OURS, ours, records, pg_server, tmp_path, as_json=as_json, succeeds=False)
    assert "id" in done.stderr.decode().splitlines()[-1], done.stderr.decode()[-2000:]
    assert "bookmarks" not in done.stdout.decode()
    with pg_server.connect(autocommit=True) as conn:
        stored = conn.execute(
            "select count(*) from information_schema.tables where table_schema = %s"
            " and table_name = 'kinds'",
            (ours,),
        ).fetchone()[0]
        if stored:
            stored = conn.execute(f'select count(*) from "{ours}".kinds').fetchone()[0]
    assert stored == 0
