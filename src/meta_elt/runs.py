"""What every run of meta-elt shares: preparing the database, running Meltano, building the marts.

Runs coordinate through PostgreSQL (locks.py): Meltano's system database is migrated by one run
at a time, and the dbt build of the marts (shared by every tenant) is serialized, each in its own
target and log directories, so backfills and syncs started side by side all succeed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.resources
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

import psycopg

from meta_elt import locks, marts, meltano_run, migrations, postgres, runtime, secrets
from meta_elt.progress import Activity, Reporter
from meta_elt.tenants import Tenant

EL = ["tap-facebook", "target-postgres"]
DBT_BUILD = "dbt-postgres:build_meta"
DBT_COVERAGE = "dbt-postgres:coverage"
DBT_LOCK = "dbt-build"


class CommandError(RuntimeError):
    """A failure the operator can act on; ``str()`` is one line."""


#: Markers of the line that explains a failed run, most telling first.
_FAILURE_MARKERS = ("already running", "failure in test", "error:", "exception", "error", "failed")
_TAP_ERROR_AFTER = "An unhandled error occurred while syncing"


def failure_line(outcome: meltano_run.RunOutcome) -> str:
    """The most telling line of a failed run: the tap's one-line error (it follows the SDK's
    "unhandled error" line), else Meltano's or dbt's own."""
    lines = [meltano_run.strip_ansi(line).strip() for line in outcome.tail]
    for before, line in itertools.pairwise(lines):
        if before.startswith(_TAP_ERROR_AFTER) and line:
            return line
    for marker in _FAILURE_MARKERS:
        for line in reversed(lines):
            if marker in line.lower() and len(line) < 600:
                return line
    return f"meltano exited with {outcome.returncode}"


def _meltano_head_revision() -> str:
    return importlib.resources.files("meltano").joinpath("migrations/db.lock").read_text().strip()


def _migrate_meltano(
    server: postgres.Server, root: Path, token_variables: Iterable[str], reporter: Reporter
) -> None:
    """Meltano migrates its system database when a command starts; two first runs at once race
    on it. One run migrates it here, under a lock, and the others find it current."""
    env = runtime.meltano_env(server, root, f"migrate-{server.database}", token_variables)
    if not runtime.system_database_is_project(env):  # Meltano migrates what it was given
        return
    with locks.hold(server, ["meltano-system-db"], "migrate Meltano", wait=reporter.info):
        with server.connect() as conn:
            found = conn.execute(
                f"select to_regclass('{runtime.MELTANO_SCHEMA}.alembic_version') is not null"
            ).fetchone()
            present = bool(found and found[0])
            current = (
                conn.execute(
                    f"select version_num from {runtime.MELTANO_SCHEMA}.alembic_version"
                ).fetchone()
                if present
                else None
            )
        if current and current[0] == _meltano_head_revision():
            return
        log_path = runtime.log_dir(root) / "meltano-migrate.log"
        outcome = meltano_run.run(["state", "list"], env=env, cwd=root, log_path=log_path)
        if outcome.returncode != 0:
            raise CommandError(
                f"could not prepare Meltano's system database: {failure_line(outcome)} "
                f"(log: {log_path})"
            )


@contextlib.contextmanager
def extraction(
    server: postgres.Server,
    root: Path,
    tenant: Tenant,
    suffix: str,
    *,
    accounts: list[str],
    token_variables: Iterable[str],
    purpose: str,
    reporter: Reporter,
    start: dt.date | None,
    end: dt.date | None,
    extra: dict[str, object],
    force: bool = False,
) -> Iterator[dict[str, str]]:
    """What one tenant's extract and load holds while it runs, and its environment.

    The state id's lock (a second run of the same work is refused, naming the holder; ``force``
    ends a stuck holder), each account's extract lock (another run of the account is waited
    for), and the tenant's token served to its tap alone (secrets.TokenBroker)."""
    with (
        locks.hold(server, [f"state:{suffix}"], purpose, force=force),
        locks.hold(
            server,
            [f"extract:{tenant.id}:{account}" for account in accounts],
            purpose,
            wait=reporter.info,
        ),
        secrets.TokenBroker(tenant.token() or "") as broker,
    ):
        yield runtime.tap_env(
            server,
            root,
            suffix,
            tenant,
            token_variables=token_variables,
            token_file=broker.path,
            accounts=accounts,
            start=start,
            end=end,
            extra=extra,
        )


def extract_load(
    server: postgres.Server,
    root: Path,
    env: dict[str, str],
    suffix: str,
    *,
    full_refresh: bool = False,
    activity: Activity | None = None,
) -> meltano_run.RunOutcome:
    """``meltano run tap-facebook target-postgres`` under this state id (inside `extraction`).

    --force: the state lock proves no other run of this state id is alive, so a run row left
    RUNNING by a killed run must not block this one; that row is closed afterwards."""
    args = ["run", "--force", "--state-id-suffix", suffix]
    if full_refresh:
        args.append("--full-refresh")
    outcome = meltano_run.run(
        [*args, *EL],
        env=env,
        cwd=root,
        log_path=runtime.log_dir(root) / f"{suffix}.log",
        on_progress=activity.update if activity else None,
    )
    close_abandoned_runs(server, env, suffix)
    return outcome


def close_abandoned_runs(server: postgres.Server, env: dict[str, str], suffix: str) -> int:
    """Mark as failed the Meltano run rows of this state id still marked running.

    Called with the state id's lock held, after its run ended: no run of it can be alive, so a
    RUNNING row is one whose Meltano died without recording its end (a kill -9, a database
    outage). Meltano itself would leave it for five minutes, blocking `meltano run` without
    --force. Returns the number of rows closed."""
    if not runtime.system_database_is_project(env):
        return 0
    try:
        with server.connect() as conn:
            closed = conn.execute(
                f"update {runtime.MELTANO_SCHEMA}.runs set state = 'FAIL', "
                "ended_at = (now() at time zone 'utc') "
                "where job_name = %s and state = 'RUNNING'",
                (runtime.state_id(env, suffix),),
            ).rowcount
            conn.commit()
    except psycopg.Error:  # the database is down: the next run of this state id closes it
        return 0
    return closed


def prepare(
    server: postgres.Server, root: Path, token_variables: Iterable[str], reporter: Reporter
) -> None:
    """Before any run: Meltano's system database, raw keys migrated, the marts' schema mode."""
    runtime.prepare_state_schema(server)
    _migrate_meltano(server, root, token_variables, reporter)
    with server.connect() as conn:
        for change in migrations.tenant_keys(conn, runtime.raw_schema()):
            reporter.info(f"schemaMode: migrating {change}")
        reporter.info(marts.schema_mode(conn, root).log_line())


def dbt_lock(
    server: postgres.Server, reporter: Reporter, run_name: str
) -> contextlib.AbstractContextManager[None]:
    """The dbt lock of the database (one dbt command at a time), waited for, the holder
    reported: held around every `run_dbt`."""
    return locks.hold(server, [DBT_LOCK], f"dbt ({run_name})"[:40], wait=reporter.info)


def run_dbt(
    server: postgres.Server,
    root: Path,
    token_variables: Iterable[str],
    reporter: Reporter,
    command: str,
    run_name: str,
    extra_args: Iterable[str] = (),
) -> tuple[bool, str]:
    """A dbt command of the project (``dbt-postgres:<name>``), inside `dbt_lock`: (ok, message).

    Each database and command has a dbt target directory of its own, so dbt's partial parsing
    holds: a manifest is parsed with the vars of its command (the scheduled build's differ from
    the coverage run's), and a saved one parsed with other vars is thrown away and the project
    parsed in full. One directory for both made every sync after a `verify` (and every `verify`
    after a sync) parse the whole project again."""
    name = command.split(":")[-1]
    env = runtime.meltano_env(server, root, f"dbt-{server.database}-{name}", token_variables)
    log_path = runtime.log_dir(root) / f"{run_name}-dbt.log"
    with reporter.activity(f"dbt {name}") as step:
        outcome = meltano_run.run(
            ["invoke", command, *extra_args],
            env=env,
            cwd=root,
            log_path=log_path,
            on_line=step.line_seen,
        )
    if outcome.returncode != 0:
        return False, f"{failure_line(outcome)} (log: {log_path})"
    return True, "ok"


def _last_build(
    server: postgres.Server, since: dt.datetime | None
) -> tuple[str | None, dt.datetime]:
    """The run whose recorded build (runtime.BUILDS_TABLE) started after ``since``, if any, and
    the database clock now."""
    with server.connect() as conn:
        row = conn.execute(
            f"select (select run_name from {runtime.BUILDS_TABLE} "
            "where command = %s and started_at > %s), clock_timestamp()",
            (DBT_BUILD, since),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def build_marts(
    server: postgres.Server,
    root: Path,
    token_variables: Iterable[str],
    reporter: Reporter,
    run_name: str,
) -> tuple[bool, str]:
    """The scheduled build of the marts (what they depend on, their tests), after this run's
    loads have ended.

    Builds coalesce: runs that finish their loads while another builds wait for the dbt lock,
    and the first of them to take it builds for all: a successful build that started after a
    run's loads had ended read every row they committed (it is the build that run would have
    started), so the others do not build again, and each prints whose build it relied on. Each
    successful build is recorded (runtime.BUILDS_TABLE) with the time it started.

    Marts of an older version (schemaMode "legacy": a contract column missing) are rebuilt in
    full, once: dbt's append_new_columns adds the column but leaves it NULL in every row the
    incremental run does not rewrite, and the marts would no longer agree with each other."""
    _, loaded = _last_build(server, None)
    with server.connect() as conn:
        legacy = marts.schema_mode(conn, root).mode == "legacy"
    if legacy:
        reporter.info("schemaMode: legacy marts are rebuilt in full on this run (once)")
    extra = ["--full-refresh"] if legacy else []
    with dbt_lock(server, reporter, run_name):
        builder, started = _last_build(server, loaded)
        if builder:
            reporter.info(
                f"dbt build_meta: not run again, the marts were built by '{builder}' after this "
                "run's loads had ended"
            )
            return True, "ok"
        ok, message = run_dbt(server, root, token_variables, reporter, DBT_BUILD, run_name, extra)
        if ok:
            with server.connect() as conn:
                conn.execute(
                    f"insert into {runtime.BUILDS_TABLE} (command, started_at, run_name) "
                    "values (%s, %s, %s) on conflict (command) do update "
                    "set started_at = excluded.started_at, run_name = excluded.run_name",
                    (DBT_BUILD, started, run_name),
                )
    return ok, message
