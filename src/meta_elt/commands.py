"""The operator commands: backfill, sync, verify and tenants check (arguments: cli.py).

Every command checks its inputs first (exit 2, one line), then what it needs from outside (the
tenant's token, the Graph API answering and the account readable: one line within seconds), and
only then touches the database.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from meta_elt import (
    access,
    dates,
    inputs,
    locks,
    marts,
    meltano_run,
    postgres,
    runtime,
    sync_plan,
    tenants,
)
from meta_elt.progress import Reporter
from meta_elt.runs import (
    DBT_COVERAGE,
    CommandError,
    build_marts,
    dbt_lock,
    extract_load,
    extraction,
    failure_line,
    prepare,
    run_dbt,
)

__all__ = [
    "CommandError",
    "backfill",
    "migrate",
    "sync",
    "tenants_check",
    "tenants_list",
    "verify",
]


def _today() -> dt.date:
    return dt.date.today()


def _for_tenant(message: str, tenant: tenants.Tenant) -> str:
    """The tap's hints name its own setting; meta-elt's operator sets the tenant's variable."""
    return message.replace(
        "the access_token setting (TAP_FACEBOOK_ACCESS_TOKEN)",
        f"${tenant.token_env} (tenant {tenant.name})",
    )


def _require_token(tenant: tenants.Tenant) -> None:
    if not tenant.token():
        raise CommandError(
            f"tenant {tenant.id} ({tenant.name}): no access token in ${tenant.token_env}; "
            f"export {tenant.token_env}=<Meta access token> (see .env.example)"
        )


@dataclass(frozen=True)
class BackfillRequest:
    tenant: str  # as given; tenants.find resolves it
    account: str
    since: dt.date
    until: dt.date
    chunk_months: int
    concurrency: int | None  # None: the tap's max_concurrent_jobs (registry, env or default)
    resume: bool
    force: bool
    build: bool = True


def parse_backfill(args) -> BackfillRequest:
    """Validate every input before anything is touched."""
    tenant = str(args.tenant)  # looked up, with hints, in the registry (tenants.find)
    account = inputs.account_id(args.account)
    since, until = inputs.date_range(args.since, args.until, _today())
    chunk = inputs.positive_int(args.chunk_size, "--chunk-size", maximum=12)
    concurrency = (
        None
        if args.concurrency is None
        else inputs.positive_int(args.concurrency, "--concurrency", maximum=inputs.MAX_CONCURRENCY)
    )
    return BackfillRequest(
        tenant,
        account,
        since,
        until,
        chunk,
        concurrency,
        args.resume,
        args.force,
        build=not getattr(args, "no_build", False),
    )


def _preflight(root: Path, tenant: tenants.Tenant, accounts: list[str]) -> list[access.Access]:
    """Each account read once with the tenant's token, before anything is created: the API
    unreachable is one line within seconds (not minutes of retries)."""
    try:
        return access.check_accounts(tenant, accounts, access.api_base(root))
    except access.ApiUnreachable as exc:
        raise CommandError(str(exc)) from None


def backfill(request: BackfillRequest, root: Path, reporter: Reporter) -> int:
    registry = tenants.load(tenants.registry_path(root), root)
    tenant = tenants.find(registry, request.tenant)
    tenants.account_of(registry, tenant, request.account)
    _require_token(tenant)
    denied = [a for a in _preflight(root, tenant, [request.account]) if not a.readable]
    if denied:
        raise CommandError(
            f"tenant {tenant.id}: its token (${tenant.token_env}) cannot read "
            f"{request.account}: {denied[0].detail}"
        )
    token_variables = tenants.token_variables(registry)
    suffix = runtime.state_id_suffix(
        "backfill",
        tenant.id,
        request.account,
        request.since.isoformat(),
        request.until.isoformat(),
    )
    log_path = runtime.log_dir(root) / f"{suffix}.log"
    with postgres.provide() as server:
        reporter.info(f"PostgreSQL {server.describe()}")
        prepare(server, root, token_variables, reporter)
        # The same range: refused (naming the holder). Another range of the account: waits.
        with extraction(
            server,
            root,
            tenant,
            suffix,
            accounts=[request.account],
            token_variables=token_variables,
            purpose=f"backfill {request.account} {request.since}..{request.until}",
            reporter=reporter,
            start=request.since,
            end=request.until,
            extra={
                "chunk_months": request.chunk_months,
                "lookback_days": 0,
                **(
                    {}
                    if request.concurrency is None
                    else {"max_concurrent_jobs": request.concurrency}
                ),
            },
            force=request.force,
        ) as env:
            ceiling = "" if request.concurrency is None else f", at most {request.concurrency}"
            reporter.info(
                f"backfill {tenant.id} {request.account} {request.since}..{request.until} "
                f"(chunk {request.chunk_months} month(s), jobs in flight as Meta's throttle "
                f"allows{ceiling}{', resuming' if request.resume else ''})"
            )
            with reporter.activity(f"backfill {request.account}") as step:
                outcome = extract_load(
                    server, root, env, suffix, full_refresh=not request.resume, activity=step
                )
        if outcome.returncode != 0:
            raise CommandError(
                f"backfill failed: {_for_tenant(failure_line(outcome), tenant)} (log: {log_path})"
            )
        if not request.build:
            reporter.info(
                f"backfill loaded in {meltano_run.clock(outcome.progress.elapsed())}: "
                f"{outcome.progress.rows:,} rows extracted in {outcome.progress.windows_done} "
                "windows; marts not built (--no-build)"
            )
            return 0
        built, message = build_marts(server, root, token_variables, reporter, suffix)
        if not built:
            raise CommandError(f"backfill loaded, but the dbt build failed: {message}")
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


def _sync_one(
    tenant: tenants.Tenant,
    readable: list[str],
    token_variables: set[str],
    server: postgres.Server,
    root: Path,
    lookback: int,
    reporter: Reporter,
    per_account: bool = False,
) -> SyncResult:
    """One tenant's incremental extract of its readable accounts (``per_account``: the one
    account, under its own state id)."""
    started = time.monotonic()
    suffix = runtime.state_id_suffix("sync", tenant.id, *(readable if per_account else []))
    try:
        with extraction(
            server,
            root,
            tenant,
            suffix,
            accounts=readable,
            token_variables=token_variables,
            purpose=f"sync {tenant.name}",
            reporter=reporter,
            start=None,
            end=None,
            extra={"lookback_days": lookback},
        ) as env:
            start = sync_plan.start_date(
                sync_plan.state_of(server, root, env, suffix),
                readable,
                today=_today(),
                lookback_days=lookback,
                floor=max(tenant.start_date or dt.date.min, dates.earliest_allowed(_today())),
            )
            env["TAP_FACEBOOK_START_DATE"] = start.isoformat()
            reporter.info(f"sync {tenant.id} ({tenant.name}): {', '.join(readable)} from {start}")
            with reporter.activity(f"sync {tenant.name}") as step:
                outcome = extract_load(server, root, env, suffix, activity=step)
    except locks.LockBusy as exc:
        return SyncResult(tenant, False, 0, time.monotonic() - started, str(exc))
    seconds = time.monotonic() - started
    if outcome.returncode != 0:
        message = _for_tenant(failure_line(outcome), tenant)
        return SyncResult(tenant, False, outcome.progress.rows, seconds, message)
    return SyncResult(tenant, True, outcome.progress.rows, seconds, "ok")


def parse_sync(
    args, registry: dict[str, tenants.Tenant]
) -> tuple[list[tenants.Tenant], int, int, str | None]:
    lookback = inputs.non_negative_int(args.lookback_days, "--lookback-days", maximum=90)
    parallel = inputs.positive_int(args.parallel, "--parallel", maximum=inputs.MAX_CONCURRENCY)
    if args.all:
        chosen = list(registry.values())
    elif args.tenant:
        chosen = [tenants.find(registry, t) for t in args.tenant]
    else:
        raise inputs.BadInput("--tenant", "no tenant given", "name one or more, or use --all")
    account = getattr(args, "account", None)
    if account is not None:
        if args.all or len(chosen) != 1:
            raise inputs.BadInput(
                "--account", "needs exactly one --tenant", "name the account's tenant once"
            )
        account = tenants.account_of(registry, chosen[0], inputs.account_id(account))
    return chosen, lookback, parallel, account


def sync(args, root: Path, reporter: Reporter) -> int:
    """Each tenant's readable accounts extracted (in parallel if asked), then one dbt build.

    A tenant without a token, or an account its token cannot read, fails alone: the tenant's
    other accounts and the other tenants go on, and the summary names each failure."""
    started = time.monotonic()
    registry = tenants.load(tenants.registry_path(root), root)
    chosen, lookback, parallel, only_account = parse_sync(args, registry)
    build = not getattr(args, "no_build", False)
    token_variables = tenants.token_variables(registry)
    readable: dict[str, list[str]] = {}
    failures: list[SyncResult] = []
    for tenant in chosen:
        if not tenant.token():
            failures.append(
                SyncResult(tenant, False, 0, 0.0, f"no access token in ${tenant.token_env}")
            )
            continue
        accounts = [only_account] if only_account else list(tenant.accounts)
        checked = _preflight(root, tenant, accounts)
        readable[tenant.id] = [a.account for a in checked if a.readable]
        failures.extend(
            SyncResult(tenant, False, 0, 0.0, f"{a.account}: unreadable with its token: {a.detail}")
            for a in checked
            if not a.readable
        )
    runnable = [t for t in chosen if readable.get(t.id)]
    with postgres.provide() as server:
        reporter.info(f"PostgreSQL {server.describe()}")
        prepare(server, root, token_variables, reporter)
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            extracted = list(
                pool.map(
                    lambda t: _sync_one(
                        t,
                        readable[t.id],
                        token_variables,
                        server,
                        root,
                        lookback,
                        reporter,
                        per_account=only_account is not None,
                    ),
                    runnable,
                )
            )
        build_ok, build_message = True, "ok"
        if build and any(r.ok for r in extracted):
            build_ok, build_message = build_marts(
                server, root, token_variables, reporter, f"sync-{server.database}"
            )
    results = extracted + failures
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
        reporter.error(
            f"{len(failed)} failure(s) in {len(chosen)} tenant(s): "
            + "; ".join(f"{r.tenant.name}: {r.message}" for r in failed)
        )
    if not failed and build_ok:
        reporter.info(
            f"sync done in {meltano_run.clock(time.monotonic() - started)}: {len(results)} "
            f"tenant(s), {sum(r.rows for r in results):,} rows extracted, "
            + ("marts built and tested" if build else "marts not built (--no-build)")
        )
    return 1 if failed or not build_ok else 0


def migrate(args, root: Path, reporter: Reporter) -> int:
    """Bring the database up to this version (what every run does first), and nothing else:
    Meltano's system database, the raw tables' keys, the marts' schema mode logged."""
    registry = tenants.load(tenants.registry_path(root), root)
    with postgres.provide() as server:
        reporter.info(f"PostgreSQL {server.describe()}")
        prepare(server, root, tenants.token_variables(registry), reporter)
    reporter.info("the database is up to date")
    return 0


def verify(args, root: Path, reporter: Reporter) -> int:
    """Coverage recomputed once (one dbt run, whatever the number of tenants), then each tenant's
    tables; exit 1 if any tenant has a missing synced day or, of several, no synced data."""
    registry = tenants.load(tenants.registry_path(root), root)
    if args.all:
        tenant_ids = list(registry)
    else:
        tenant_ids = list(dict.fromkeys(inputs.tenant_id(t) for t in args.tenant))
    accounts = [inputs.account_id(a) for a in args.account or []]
    if accounts and (args.all or len(tenant_ids) != 1):
        raise inputs.BadInput(
            "--account", "needs exactly one --tenant", "name the accounts' tenant once"
        )
    if not tenant_ids:
        raise CommandError("the tenants registry is empty; add a tenant to orchestrate/tenants.yml")
    several = len(tenant_ids) > 1
    run_name = "verify-all" if several else f"verify-{tenant_ids[0]}"
    with postgres.provide() as server:
        with server.connect() as conn:
            if not marts.relation_exists(conn, "meta_insights_levels"):
                raise CommandError(
                    "the marts are not built yet; run meta-elt backfill (or sync) first"
                )
        # Coverage is a table built with the marts: recompute it from the marts as they are now.
        with dbt_lock(server, reporter, run_name):
            ok, message = run_dbt(
                server, root, tenants.token_variables(registry), reporter, DBT_COVERAGE, run_name
            )
        if not ok:
            raise CommandError(f"could not compute coverage: {message}")
        failed = []
        for tenant_id in tenant_ids:
            with server.connect() as conn:
                coverage, values = marts.verification(conn, tenant_id, accounts)
            tenant = registry.get(tenant_id)
            label = f"tenant {tenant_id}" + (f" ({tenant.name})" if tenant else "")
            if several:
                reporter.info(label)
            if _verify_tenant(tenant_id, accounts, coverage, values, reporter, several):
                continue
            failed.append(label)
    if several and failed:
        reporter.error(f"{len(failed)} of {len(tenant_ids)} tenant(s) failed: {'; '.join(failed)}")
    return 1 if failed else 0


def _verify_tenant(
    tenant_id: str,
    accounts: list[str],
    coverage: list[tuple],
    values: list[tuple],
    reporter: Reporter,
    several: bool,
) -> bool:
    """Print one tenant's coverage and values; False (the error said) if it has no synced data
    or a synced day is missing."""
    if not coverage:
        message = (
            f"no synced data for tenant {tenant_id}"
            + (f" and account(s) {', '.join(accounts)}" if accounts else "")
            + "; check the tenant id and run a backfill"
        )
        if not several:
            raise CommandError(message)
        reporter.error(message)
        return False
    reporter.table(
        ["account", "level", "rows", "first date", "last date", "missing days"],
        [(a, lvl, f"{n:,}", str(f), str(la), str(m)) for a, lvl, n, f, la, m, _ in coverage],
    )
    reporter.table(
        ["account", "level", "action_report_time", "attribution_window", "breakdowns", "rows"],
        [tuple(str(v) for v in row) for row in values],
    )
    missing = sum(int(row[5]) for row in coverage)
    if missing:
        where = "; ".join(
            f"{account} {level}: {_dates(dates, int(count))}"
            for account, level, _, _, _, count, dates in coverage
            if count
        )
        reporter.error(
            f"{missing} synced day(s) missing from the marts ({where}); rerun a backfill of "
            "those days (meta-elt backfill --since/--until)"
        )
        return False
    reporter.info("every synced day is present at every level")
    return True


def _dates(dates: list[dt.date] | None, count: int) -> str:
    """The missing days, consecutive ones as ranges (``2026-01-03..2026-01-05``)."""
    ranges: list[list[dt.date]] = []
    for day in sorted(dates or []):
        if ranges and day - ranges[-1][1] == dt.timedelta(days=1):
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    text = ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in ranges)
    shown = len(dates or [])
    return text + (f" and {count - shown} more" if count > shown else "")


def tenants_list(args, root: Path, reporter: Reporter) -> int:
    """The validated registry as JSON on stdout: how other programs (the Dagster code location)
    read it without importing meta-elt. Token variables are named, never read."""
    registry = tenants.load(tenants.registry_path(root), root)
    document = {
        "tenants": [
            {
                "id": t.id,
                "name": t.name,
                "token_env": t.token_env,
                "accounts": list(t.accounts),
                "start_date": t.start_date.isoformat() if t.start_date else None,
            }
            for t in registry.values()
        ]
    }
    print(json.dumps(document), flush=True)
    return 0


def tenants_check(args, root: Path, reporter: Reporter) -> int:
    """Per tenant and account: can the tenant's token read it; which accounts are shared."""
    registry = tenants.load(tenants.registry_path(root), root)
    chosen = [tenants.find(registry, t) for t in args.tenant or []] or list(registry.values())
    shared = tenants.shared_accounts(registry)
    try:
        results = access.check(chosen, access.api_base(root))
    except access.ApiUnreachable as exc:
        raise CommandError(str(exc)) from None
    rows = []
    for result in results:
        others = [t.id for t in shared.get(result.account, []) if t.id != result.tenant.id]
        rows.append(
            (
                result.tenant.id,
                result.tenant.name,
                result.account,
                "readable" if result.readable else "NOT READABLE",
                result.detail,
                ("also under " + ", ".join(others)) if others else "",
            )
        )
    reporter.table(["tenant", "name", "account", "access", "detail", "shared"], rows)
    unreadable = [r for r in results if not r.readable]
    if unreadable:
        reporter.error(
            f"{len(unreadable)} account(s) cannot be read with their tenant's token: "
            + ", ".join(f"{r.account} ({r.tenant.token_env})" for r in unreadable)
            + "; grant the token ads_read on them or remove them from the registry"
        )
        return 1
    reporter.info(f"every listed account is readable ({len(results)} checked)")
    return 0
