"""The loader's side of the `dbt-build` lock (docs/CONTRACTS.md, "Locks").

A dbt build holds the lock exclusively; a loader holds it shared from the start of a drain to its
end, on a connection of its own. A drain loads each stream in a transaction of its own (in
parallel threads for `drain_all`), so a lock per transaction let a build that queued in between
see some streams of the drain and not others (ad sets without their campaigns). Held for the
whole drain, a build waits for the drain and the drain for the build; PostgreSQL queues a waiting
exclusive request ahead of later shared ones, so loads cannot starve a build. Re-entrant: a batch
loaded inside a drain, in any thread, runs under the drain's hold; one loaded outside a drain
(the SDK draining a full sink) takes it for itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator

import sqlalchemy as sa

#: What a build waiting for a drain names as the holder (pg_stat_activity.application_name).
APPLICATION = "target-postgres-window-state: loading a batch"
#: The key of the `dbt-build` advisory lock, as meta-elt computes it.
DBT_BUILD_LOCK = int.from_bytes(hashlib.sha256(b"dbt-build").digest()[:8], "big", signed=True)


class BuildGate:
    """The `dbt-build` lock held shared by this process, re-entrantly, across threads."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._depth = 0
        self._holder: sa.Connection | None = None

    @contextlib.contextmanager
    def held(self, engine: sa.Engine) -> Iterator[None]:
        with self._mutex:
            if self._depth == 0:
                holder = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                try:
                    holder.execute(
                        sa.text("select set_config('application_name', :name, false)"),
                        {"name": APPLICATION},
                    )
                    holder.execute(
                        sa.text("select pg_advisory_lock_shared(:key)"), {"key": DBT_BUILD_LOCK}
                    )
                except BaseException:
                    holder.close()
                    raise
                self._holder = holder
            self._depth += 1
        try:
            yield
        finally:
            with self._mutex:
                self._depth -= 1
                if self._depth == 0 and self._holder is not None:
                    holder, self._holder = self._holder, None
                    try:
                        holder.execute(
                            sa.text("select pg_advisory_unlock_shared(:key)"),
                            {"key": DBT_BUILD_LOCK},
                        )
                    finally:
                        holder.close()  # a closed session releases its locks in any case


#: The one gate of this loader process.
GATE = BuildGate()
