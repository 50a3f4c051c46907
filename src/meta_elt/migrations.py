"""Bring raw tables created by earlier versions up to today's keys, in place, nothing lost.

Before tenant isolation the raw tables were keyed without ``tenant_id`` (``[account_id, date,
ad_id]``...), so the same ad account under two tenants upserted one tenant's rows over the other's.
target-postgres never changes the primary key of a table that exists, so this does: every raw table
that has a ``tenant_id`` column and a primary key without it gets ``tenant_id`` added in front
(rows loaded without a tenant get the nil UUID, as dbt staging already reads them). One
transaction; each change is logged. Rows already overwritten by another tenant cannot be told
apart: backfill the tenant that lost them (the log line says so).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

NIL_TENANT = "00000000-0000-0000-0000-000000000000"

_LEGACY_KEYS = """
select tbl.relname, con.conname,
       array(
           select att.attname
           from unnest(con.conkey) with ordinality as k(attnum, position)
           inner join pg_catalog.pg_attribute as att
               on att.attrelid = tbl.oid and att.attnum = k.attnum
           order by k.position
       ) as key_columns
from pg_catalog.pg_constraint as con
inner join pg_catalog.pg_class as tbl on con.conrelid = tbl.oid
inner join pg_catalog.pg_namespace as nsp on tbl.relnamespace = nsp.oid
where con.contype = 'p'
  and nsp.nspname = %s
  and exists (
      select 1 from pg_catalog.pg_attribute as att
      where att.attrelid = tbl.oid and att.attname = 'tenant_id' and not att.attisdropped
  )
  and not exists (
      select 1 from pg_catalog.pg_attribute as att
      where att.attrelid = tbl.oid and att.attname = 'tenant_id' and att.attnum = any(con.conkey)
  )
order by tbl.relname
"""


def tenant_keys(conn: psycopg.Connection, raw_schema: str) -> list[str]:
    """Add tenant_id to the primary key of every legacy raw table; one log line per table."""
    changes: list[str] = []
    with conn.transaction():
        for table, constraint, columns in conn.execute(_LEGACY_KEYS, (raw_schema,)).fetchall():
            relation = sql.Identifier(raw_schema, table)
            conn.execute(
                sql.SQL("update {} set tenant_id = %s where tenant_id is null").format(relation),
                (NIL_TENANT,),
            )
            new_key = ["tenant_id", *columns]
            conn.execute(
                sql.SQL("alter table {} drop constraint {}, add primary key ({})").format(
                    relation,
                    sql.Identifier(constraint),
                    sql.SQL(", ").join(map(sql.Identifier, new_key)),
                )
            )
            changes.append(
                f"raw {raw_schema}.{table}: primary key ({', '.join(columns)}) -> "
                f"({', '.join(new_key)}); an account shared by two tenants before this "
                "needs a backfill for the tenant whose rows were overwritten"
            )
    return changes
