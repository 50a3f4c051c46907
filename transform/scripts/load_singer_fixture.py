"""Load a Singer fixture into Postgres the way target-postgres does, without Meltano.

    python transform/scripts/load_singer_fixture.py tests/fixtures/raw_meta.singer.jsonl \
        [--schema raw_meta] [--append]

For developing the dbt project before (or without) Meltano: one table per stream, columns typed as
target-postgres types them (jsonb for arrays/objects, numeric, bigint, date, timestamptz, text)
plus the `_sdc_*` columns; one `_sdc_batched_at` per run. By default it upserts on the stream's
key like target-postgres (the last record of a key wins); --append keeps every version, to
exercise the staging deduplication. Connects with the PG* environment variables.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime

try:
    import psycopg as pg  # psycopg 3

    def connect():
        return pg.connect(dbname=os.environ.get("PGDATABASE", "meta_elt"))
except ImportError:  # psycopg2, as shipped with dbt-postgres
    import psycopg2 as pg

    def connect():
        return pg.connect(dbname=os.environ.get("PGDATABASE", "meta_elt"))


def pg_type(prop: dict) -> str:
    types = prop.get("type", "string")
    types = [types] if isinstance(types, str) else [t for t in types if t != "null"]
    kind = types[0] if types else "string"
    if kind in ("array", "object"):
        return "jsonb"
    if kind == "integer":
        return "bigint"
    if kind == "number":
        return "numeric"
    if kind == "boolean":
        return "boolean"
    fmt = prop.get("format")
    if fmt == "date":
        return "date"
    if fmt == "date-time":
        return "timestamptz"
    return "text"


SDC = {
    "_sdc_extracted_at": "timestamptz",
    "_sdc_received_at": "timestamptz",
    "_sdc_batched_at": "timestamptz",
    "_sdc_deleted_at": "timestamptz",
    "_sdc_sequence": "bigint",
    "_sdc_table_version": "bigint",
    "_sdc_sync_started_at": "bigint",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument(
        "--schema", default=os.environ.get("TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA", "raw_meta")
    )
    parser.add_argument("--append", action="store_true", help="keep every version of a key")
    args = parser.parse_args()

    batched_at = datetime.now(UTC)
    sync_started = time.time_ns()
    schemas: dict[str, tuple[dict, list[str]]] = {}
    counts: dict[str, int] = {}
    with connect() as conn, conn.cursor() as cur:
        cur.execute(f'create schema if not exists "{args.schema}"')
        with open(args.path, encoding="utf-8") as f:
            for line in f:
                msg = json.loads(line)
                stream = msg.get("stream")
                if msg["type"] == "SCHEMA":
                    props = msg["schema"]["properties"]
                    schemas[stream] = (props, msg.get("key_properties", []))
                    cols = {name: pg_type(p) for name, p in props.items()} | SDC
                    cur.execute(f'create table if not exists "{args.schema}"."{stream}" ()')
                    for name, typ in cols.items():
                        cur.execute(
                            f'alter table "{args.schema}"."{stream}" '
                            f'add column if not exists "{name}" {typ}'
                        )
                elif msg["type"] == "RECORD":
                    props, key = schemas[stream]
                    rec = {
                        k: (json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v)
                        for k, v in msg["record"].items()
                        if k in props
                    }
                    table = f'"{args.schema}"."{stream}"'
                    if key and not args.append:
                        cur.execute(
                            f"delete from {table} where "
                            + " and ".join(f'"{k}" = %s' for k in key),
                            [rec.get(k) for k in key],
                        )
                    rec |= {
                        "_sdc_extracted_at": msg.get("time_extracted"),
                        "_sdc_received_at": datetime.now(UTC),
                        "_sdc_batched_at": batched_at,
                        "_sdc_sequence": time.time_ns(),
                        "_sdc_sync_started_at": sync_started,
                    }
                    cols = ", ".join(f'"{k}"' for k in rec)
                    marks = ", ".join(["%s"] * len(rec))
                    cur.execute(
                        f"insert into {table} ({cols}) values ({marks})", list(rec.values())
                    )
                    counts[stream] = counts.get(stream, 0) + 1
        conn.commit()
    for stream, n in sorted(counts.items()):
        print(f"{args.schema}.{stream}: {n} records")


if __name__ == "__main__":
    main()
