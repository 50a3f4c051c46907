"""Scheduled builds coalesce (src/meta_elt/runs.py build_marts): runs whose loads ended while
another run was building wait for the dbt lock, and the first of them to take it builds for all
of them; a build that failed is never relied on, and a run whose loads ended after the last build
started builds again. dbt itself is replaced by a recorder: what is under test is the decision,
taken against a database of this module's own (the lock and the record of builds live there)."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from meta_elt import locks, meltano_run, postgres, runs, runtime
from meta_elt.progress import Reporter
from tests.support import ROOT


@pytest.fixture
def server(pg_server: postgres.Server) -> Iterator[postgres.Server]:
    database = f"meta_elt_builds_{uuid.uuid4().hex[:8]}"
    server = postgres.with_database(pg_server, database)
    runtime.prepare_state_schema(server)
    yield server
    with pg_server.connect(database="postgres", autocommit=True) as conn:
        conn.execute(f"drop database if exists {database} with (force)")


class RecordedDbt:
    """Stands in for `meltano invoke dbt-postgres:...`: records each call; the calls listed in
    ``failing`` (0-based) exit 1."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.calls: list[list[str]] = []
        self.failing = failing
        self._lock = threading.Lock()

    def run(
        self, meltano_args: list[str], *, log_path: Path, **_: object
    ) -> meltano_run.RunOutcome:
        with self._lock:
            number = len(self.calls)
            self.calls.append(meltano_args)
        failed = number in self.failing
        tail = ["Failure in test not_null_x (models/x.yml)"] if failed else ["Done. PASS=1"]
        return meltano_run.RunOutcome(int(failed), meltano_run.Progress(), tail, log_path)


def _build_side_by_side(server: postgres.Server, names: list[str]) -> dict[str, tuple]:
    """build_marts of each run in ``names``, all asked for while another build holds the dbt
    lock (their loads ended during that build): (ok, message, what the run printed) by name."""
    outcomes: dict[str, tuple] = {}

    def build(name: str) -> None:
        stream = io.StringIO()
        ok, message = runs.build_marts(server, ROOT, [], Reporter(stream), name)
        outcomes[name] = (ok, message, stream.getvalue())

    with locks.hold(server, [runs.DBT_LOCK], "another run's build"):
        threads = [threading.Thread(target=build, args=(name,)) for name in names]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while _waiting_for_locks(server) < len(names):
            assert time.monotonic() < deadline, "the runs wait for the dbt lock"
            time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _waiting_for_locks(server: postgres.Server) -> int:
    with server.connect() as conn:
        row = conn.execute(
            "select count(*) from pg_catalog.pg_locks where locktype = 'advisory' "
            "and not granted and database = "
            "(select oid from pg_catalog.pg_database where datname = current_database())"
        ).fetchone()
    return int(row[0]) if row else 0


def test_runs_that_waited_for_the_same_build_build_once(server, monkeypatch):
    dbt = RecordedDbt()
    monkeypatch.setattr(runs.meltano_run, "run", dbt.run)

    outcomes = _build_side_by_side(server, ["backfill-a", "backfill-b", "sync-c"])

    assert [call[:2] for call in dbt.calls] == [["invoke", runs.DBT_BUILD]]
    assert all(ok and message == "ok" for ok, message, _ in outcomes.values()), outcomes
    skipped = [name for name, (_, _, out) in outcomes.items() if "not run again" in out]
    builder = ({"backfill-a", "backfill-b", "sync-c"} - set(skipped)).pop()
    assert len(skipped) == 2, outcomes
    for name in skipped:
        assert f"the marts were built by '{builder}' after this run's loads" in outcomes[name][2]

    # Loads that end after that build started are built by the next run, which records itself.
    ok, _ = runs.build_marts(server, ROOT, [], Reporter(io.StringIO()), "sync-d")
    assert ok and len(dbt.calls) == 2
    ok, _ = runs.build_marts(server, ROOT, [], Reporter(io.StringIO()), "sync-e")
    assert ok and len(dbt.calls) == 3


def test_a_failed_build_is_not_relied_on(server, monkeypatch):
    dbt = RecordedDbt(failing=frozenset({0}))
    monkeypatch.setattr(runs.meltano_run, "run", dbt.run)

    outcomes = _build_side_by_side(server, ["backfill-a", "backfill-b"])

    assert len(dbt.calls) == 2, "the second run builds itself after the first one's failed"
    assert sorted(ok for ok, _, _ in outcomes.values()) == [False, True], outcomes
    failed = next(message for ok, message, _ in outcomes.values() if not ok)
    assert failed.startswith("Failure in test not_null_x"), failed
    assert not any("not run again" in out for _, _, out in outcomes.values())


def test_other_dbt_commands_always_run(server, monkeypatch):
    dbt = RecordedDbt()
    monkeypatch.setattr(runs.meltano_run, "run", dbt.run)
    runs.build_marts(server, ROOT, [], Reporter(io.StringIO()), "sync-a")
    for name in ("verify-1", "verify-2"):
        reporter = Reporter(io.StringIO())
        with runs.dbt_lock(server, reporter, name):
            ok, _ = runs.run_dbt(server, ROOT, [], reporter, runs.DBT_COVERAGE, name)
        assert ok
    assert [call[1] for call in dbt.calls] == [runs.DBT_BUILD, runs.DBT_COVERAGE, runs.DBT_COVERAGE]
