"""The operator commands: backfill, sync and verify (argument parsing lives in cli.py)."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from meta_elt import inputs, marts, meltano_run, postgres, runtime, tenants
from meta_elt.progress import Reporter

EL = ["tap-facebook", "target-postgres"]
DBT_BUILD = "dbt-postgres:build_meta"


class CommandError(RuntimeError):
    """A failure the operator can act on; ``str()`` is one line."""


def _today() -> dt.date:
    return dt.date.today()


def _tenant(registry: dict[str, tenants.Tenant], tenant_id: str) -> tenants.Tenant:
    tenant = registry.get(tenant_id)
    if tenant is None:
        raise inputs.BadInput(
            "--tenant",
            f"{tenant_id} is not in the tenants registry",
            "add it to orchestrate/tenants.yml (or the file in META_ELT_TENANTS)",
        )
    return tenant


def _require_token(tenant: tenants.Tenant) -> None:
    if not tenant.token():
        raise CommandError(
            f"tenant {tenant.id} ({tenant.name}): no access token in ${tenant.token_env}; "
            f"export {tenant.token_env}=<Meta access token> (see .env.example)"
        )


#: Markers of the line that explains a failed run, most telling first.
_FAILURE_MARKERS = ("already running", "failure in test", "error:", "exception", "error", "failed")
_TAP_ERROR_AFTER = "An unhandled error occurred while syncing"


def _failure_line(outcome: meltano_run.RunOutcome) -> str:
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


class _RunLock:
    """One run per state id on this machine; a dead holder (killed run) is taken over."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "meta-elt.pid"

    def holder_alive(self) -> bool:
        try:
            pid = int(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return pid != os.getpid()

    def __enter__(self) -> _RunLock:
        self.path.write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class BackfillRequest:
    tenant_id: str
    account: str
    since: dt.date
    until: dt.date
    chunk_months: int
    concurrency: int
    resume: bool


def parse_backfill(args) -> BackfillRequest:
    """Validate every input before anything is touched."""
    tenant_id = inputs.tenant_id(args.tenant)
    account = inputs.account_id(args.account)
    since, until = inputs.date_range(args.since, args.until, _today())
    chunk = inputs.positive_int(args.chunk_size, "--chunk-size", maximum=12)
    concurrency = inputs.positive_int(
        args.concurrency, "--concurrency", maximum=inputs.MAX_CONCURRENCY
    )
    return BackfillRequest(tenant_id, account, since, until, chunk, concurrency, args.resume)


def backfill(request: BackfillRequest, root: Path, reporter: Reporter) -> int:
    registry = tenants.load(tenants.registry_path(root))
    tenant = _tenant(registry, request.tenant_id)
    if request.account not in tenant.accounts:
        raise inputs.BadInput(
            "--account",
            f"{request.account} is not an account of tenant {tenant.id}",
            "add it to the tenant's accounts in the tenants registry",
        )
    _require_token(tenant)
    with postgres.provide() as server:
        reporter.info(f"PostgreSQL {server.describe()}")
        runtime.prepare_state_schema(server)
        with server.connect() as conn:
            reporter.info(marts.schema_mode(conn, root).log_line())
        suffix = runtime.state_id_suffix(
            "backfill",
            tenant.id,
            request.account,
            request.since.isoformat(),
            request.until.isoformat(),
        )
        env = runtime.tap_env(
            server,
            root,
            suffix,
            tenant,
            accounts=[request.account],
            start=request.since,
            end=request.until,
            extra={
                "chunk_months": request.chunk_months,
                "max_concurrent_jobs": request.concurrency,
                "lookback_days": 0,
            },
        )
        workdir = Path(env["MELTANO_SYS_DIR_ROOT"])
        lock = _RunLock(workdir)
        if lock.holder_alive():
            raise CommandError(
                f"a backfill of {request.account} for tenant {tenant.id} is already running "
                f"(pid in {lock.path}); wait for it or stop it first"
            )
        # --force: no other run of this state id is alive (checked above), so a run record left
        # "running" by a killed backfill must not block its resumption.
        args = ["run", "--force", "--state-id-suffix", suffix]
        if not request.resume:
            args.append("--full-refresh")
        reporter.info(
            f"backfill {tenant.id} {request.account} {request.since}..{request.until} "
            f"(chunk {request.chunk_months} month(s), {request.concurrency} jobs in flight"
            f"{', resuming' if request.resume else ''})"
        )
        log_path = runtime.log_dir(root) / f"{suffix}.log"
        with lock:
            outcome = meltano_run.run(
                [*args, *EL, DBT_BUILD],
                env=env,
                cwd=root,
                log_path=log_path,
                on_progress=reporter.progress,
            )
        reporter.done()
        if outcome.returncode != 0:
            raise CommandError(f"backfill failed: {_failure_line(outcome)} (log: {log_path})")
        with server.connect() as conn:
            rows = marts.level_summary(conn, tenant.id, [request.account])
        reporter.table(
            ["account", "level", "rows", "first date", "last date"],
            [(a, lvl, f"{n:,}", str(f), str(la)) for a, lvl, n, f, la in rows],
        )
        reporter.info(
            f"backfill done in {meltano_run.clock(outcome.progress.elapsed())}: "
            f"{outcome.progress.rows:,} rows extracted in {outcome.progress.windows_done} windows"
        )
    return 0


@dataclass(frozen=True)
class SyncResult:
    tenant: tenants.Tenant
    ok: bool
    rows: int
    seconds: float
    message: str


def _sync_start(
    root: Path, env: dict[str, str], suffix: str, tenant: tenants.Tenant, lookback: int
) -> dt.date:
    """Without a bookmark of its own, the first daily sync reaches back `lookback` days only;
    with one, the tap resumes from the bookmark (minus lookback) and start_date is the floor."""
    state = meltano_run.state_of(root, env, suffix)
    floor = inputs.earliest_allowed(_today())
    if state:
        return max(tenant.start_date or floor, floor)
    return _today() - dt.timedelta(days=lookback)


def _sync_one(
    tenant: tenants.Tenant,
    server: postgres.Server,
    root: Path,
    lookback: int,
    reporter: Reporter,
) -> SyncResult:
    started = time.monotonic()
    if not tenant.token():
        return SyncResult(
            tenant, False, 0, 0.0, f"no access token in ${tenant.token_env}; export it"
        )
    suffix = runtime.state_id_suffix("sync", tenant.id)
    env = runtime.tap_env(
        server,
        root,
        suffix,
        tenant,
        accounts=list(tenant.accounts),
        start=None,
        end=None,
        extra={"lookback_days": lookback},
    )
    env["TAP_FACEBOOK_START_DATE"] = _sync_start(root, env, suffix, tenant, lookback).isoformat()
    log_path = runtime.log_dir(root) / f"sync-{tenant.id}.log"
    reporter.info(f"sync {tenant.id} ({tenant.name}): {', '.join(tenant.accounts)}")
    outcome = meltano_run.run(
        ["run", "--state-id-suffix", suffix, *EL], env=env, cwd=root, log_path=log_path
    )
    seconds = time.monotonic() - started
    if outcome.returncode != 0:
        message = _failure_line(outcome)
        if "access token" in message.lower():
            message += f" [this tenant's token is read from ${tenant.token_env}]"
        return SyncResult(tenant, False, outcome.progress.rows, seconds, message)
    return SyncResult(tenant, True, outcome.progress.rows, seconds, "ok")


def parse_sync(args, registry: dict[str, tenants.Tenant]) -> tuple[list[tenants.Tenant], int, int]:
    lookback = inputs.non_negative_int(args.lookback_days, "--lookback-days", maximum=90)
    parallel = inputs.positive_int(args.parallel, "--parallel", maximum=inputs.MAX_CONCURRENCY)
    if args.all:
        chosen = list(registry.values())
    elif args.tenant:
        chosen = [_tenant(registry, inputs.tenant_id(t)) for t in args.tenant]
    else:
        raise inputs.BadInput("--tenant", "no tenant given", "name one or more, or use --all")
    return chosen, lookback, parallel


def sync(args, root: Path, reporter: Reporter) -> int:
    registry = tenants.load(tenants.registry_path(root))
    chosen, lookback, parallel = parse_sync(args, registry)
    with postgres.provide() as server:
        reporter.info(f"PostgreSQL {server.describe()}")
        runtime.prepare_state_schema(server)
        with server.connect() as conn:
            reporter.info(marts.schema_mode(conn, root).log_line())
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            results = list(
                pool.map(lambda t: _sync_one(t, server, root, lookback, reporter), chosen)
            )
        build_ok, build_message = True, "ok"
        if any(r.ok for r in results):
            env = runtime.meltano_env(server, root, "sync-dbt")
            log_path = runtime.log_dir(root) / "sync-dbt.log"
            outcome = meltano_run.run(["run", DBT_BUILD], env=env, cwd=root, log_path=log_path)
            build_ok = outcome.returncode == 0
            if not build_ok:
                build_message = f"{_failure_line(outcome)} (log: {log_path})"
    reporter.table(
        ["tenant", "name", "status", "rows", "seconds", "message"],
        [
            (
                r.tenant.id,
                r.tenant.name,
                "ok" if r.ok else "FAILED",
                f"{r.rows:,}",
                f"{r.seconds:.0f}",
                r.message,
            )
            for r in results
        ],
    )
    if not build_ok:
        reporter.error(f"dbt build failed: {build_message}")
    failed = [r for r in results if not r.ok]
    if failed:
        reporter.error(f"{len(failed)} of {len(results)} tenant(s) failed")
    return 1 if failed or not build_ok else 0


def verify(args, root: Path, reporter: Reporter) -> int:
    tenant_id = inputs.tenant_id(args.tenant)
    accounts = [inputs.account_id(a) for a in args.account or []]
    with postgres.provide() as server:
        with server.connect() as conn:
            if not marts.relation_exists(conn, "meta_insights_levels"):
                raise CommandError(
                    "the marts are not built yet; run meta-elt backfill (or sync) first"
                )
        # Coverage is a table built with the marts: recompute it from the marts as they are now.
        env = runtime.meltano_env(server, root, f"verify-{tenant_id}")
        log_path = runtime.log_dir(root) / f"verify-{tenant_id}.log"
        outcome = meltano_run.run(
            ["invoke", "dbt-postgres:coverage"], env=env, cwd=root, log_path=log_path
        )
        if outcome.returncode != 0:
            raise CommandError(f"could not compute coverage: {_failure_line(outcome)}")
        with server.connect() as conn:
            coverage, values = marts.verification(conn, tenant_id, accounts)
    if not coverage:
        raise CommandError(
            f"no synced data for tenant {tenant_id}"
            + (f" and account(s) {', '.join(accounts)}" if accounts else "")
            + "; check the tenant id and run a backfill"
        )
    reporter.table(
        ["account", "level", "rows", "first date", "last date", "missing days"],
        [(a, lvl, f"{n:,}", str(f), str(la), str(m)) for a, lvl, n, f, la, m in coverage],
    )
    reporter.table(
        ["account", "level", "action_report_time", "attribution_window", "breakdowns", "rows"],
        [tuple(str(v) for v in row) for row in values],
    )
    missing = sum(int(row[5]) for row in coverage)
    if missing:
        reporter.error(f"{missing} synced day(s) missing from the marts")
        return 1
    reporter.info("every synced day is present at every level")
    return 0
