"""Run locks in PostgreSQL: advisory locks that live as long as their holder's connection.

A lock names what a run touches (a state id, a tenant's ad account, the dbt build of the marts).
It is held on a connection of its own whose ``application_name`` describes the holder (command,
pid, host), so a refused or waiting run can name it; it is released when the holder ends, whatever
ends it (a kill -9 closes the connection), and it works across machines that share the database.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from meta_elt import postgres

_HOLDER = """
select a.application_name, a.pid
from pg_catalog.pg_locks as l
inner join pg_catalog.pg_stat_activity as a on a.pid = l.pid
where l.locktype = 'advisory' and l.granted and l.database = (
    select oid from pg_catalog.pg_database where datname = current_database()
) and l.classid = %s and l.objid = %s and l.objsubid = 1
"""


class LockBusy(RuntimeError):
    """The work is already being done by another run (one line, names the holder)."""


def key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def describe(purpose: str) -> str:
    """Who holds a lock: which process, doing what, on which machine (PostgreSQL keeps 63
    bytes of it, so the host goes last)."""
    return f"meta-elt[{os.getpid()}] {purpose} @{socket.gethostname()}"[:63]


def holder(conn: psycopg.Connection, lock_key: int) -> str:
    unsigned = lock_key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(_HOLDER, (unsigned >> 32, unsigned & 0xFFFFFFFF)).fetchone()
    return f"'{row[0]}' (backend {row[1]})" if row else "another run"


@contextmanager
def hold(
    server: postgres.Server,
    names: list[str],
    purpose: str,
    *,
    wait: Callable[[str], None] | None = None,
    force: bool = False,
) -> Iterator[None]:
    """Hold the locks ``names`` (taken in sorted order) for the duration of the block.

    A lock held by someone else: with ``wait`` the run reports the holder through it and waits;
    without, LockBusy names the holder. ``force`` ends the holder's session first (for a holder
    that is alive but stuck; a dead holder never needs it)."""
    conn = server.connect(autocommit=True, application_name=describe(purpose))
    try:
        for name in sorted(set(names)):
            lock_key = key(name)
            taken = conn.execute("select pg_try_advisory_lock(%s)", (lock_key,)).fetchone()
            if taken and taken[0]:
                continue
            who = holder(conn, lock_key)
            if force:
                conn.execute(
                    "select pg_terminate_backend(l.pid) from pg_catalog.pg_locks as l "
                    "where l.locktype = 'advisory' and l.granted and l.classid = %s "
                    "and l.objid = %s and l.objsubid = 1",
                    ((lock_key & 0xFFFFFFFFFFFFFFFF) >> 32, lock_key & 0xFFFFFFFF),
                )
            elif wait is None:
                raise LockBusy(f"{name} is in use by {who}; wait for it to end, or use --force")
            else:
                wait(f"waiting for {name}, in use by {who}")
            conn.execute("select pg_advisory_lock(%s)", (lock_key,))
        yield
    finally:
        conn.close()
