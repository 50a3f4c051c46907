"""The raw tables as Dagster assets, materialized by `meta-elt` (the operator's own backfill and
sync: one implementation of extraction, Meltano state ids and PostgreSQL locks).

The insights table of each report is partitioned by tenant-account x day. The other raw tables
(the dimension snapshots and the synced windows) are not per day: they are unpartitioned assets
whose materialization each load run reports once. Each partition is an event in Dagster's event
log, so this keeps a 92-day run at 92 events per report rather than per table.

A run covers a contiguous date range of one account (the backfill policy; the schedule and "sync
now" request such ranges): `meta-elt backfill --since --until --no-build` for a backfill,
`meta-elt sync --account --lookback-days --no-build` for the daily sync (tag meta_elt/mode=sync).
The dbt assets build the marts afterwards.
"""

import datetime as dt
import os
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import dagster as dg

from meta_elt_dagster import project
from meta_elt_dagster.registry import parse_account_key

ACCOUNT_DIMENSION = "account"
DATE_DIMENSION = "date"
#: The tenant-accounts of the registry, kept in step by the `tenant_accounts_from_registry` sensor.
TENANT_ACCOUNTS = dg.DynamicPartitionsDefinition(name="meta_tenant_account")
#: The tenants (for "sync now"), kept in step by the same sensor.
TENANTS = dg.DynamicPartitionsDefinition(name="meta_tenant")
#: Run tag: "sync" for the daily incremental sync (schedule, sync now); absent for a backfill.
MODE_TAG = "meta_elt/mode"
#: Pool of the runs that talk to Meta: its limit caps extracting runs app-wide; each keeps at
#: most --concurrency async report jobs in flight (dagster.yaml, README "Dagster").
META_API_POOL = "meta_api"
#: Days per run of a backfill (a quarter): a failed run redoes at most this much.
MAX_DAYS_PER_RUN = 92


def partitions_def() -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            ACCOUNT_DIMENSION: TENANT_ACCOUNTS,
            DATE_DIMENSION: dg.DailyPartitionsDefinition(
                start_date=project.first_day().isoformat(), end_offset=1
            ),
        }
    )


def retry_policy() -> dg.RetryPolicy:
    """Transient failures (meta-elt exit 1: the API, the database, a lock holder) are retried
    with exponential backoff; a backfill's retry resumes from its own state (--resume)."""
    return dg.RetryPolicy(
        max_retries=project.env_int("META_ELT_DAGSTER_RETRIES", 3),
        delay=project.env_int("META_ELT_DAGSTER_RETRY_DELAY", 60),
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


def ranges(partition_keys: Iterable[str]) -> list[tuple[str, dt.date, dt.date]]:
    """(account key, since, until) for each contiguous run of days per account, in order."""
    days: dict[str, set[dt.date]] = defaultdict(set)
    for key in partition_keys:
        account, day = _split(key)
        days[account].add(day)
    out: list[tuple[str, dt.date, dt.date]] = []
    for account in sorted(days):
        first, *rest = sorted(days[account])
        start = previous = first
        for day in rest:
            if day - previous != dt.timedelta(days=1):
                out.append((account, start, previous))
                start = day
            previous = day
        out.append((account, start, previous))
    return out


def _split(key: str | dg.MultiPartitionKey) -> tuple[str, dt.date]:
    keys = key.keys_by_dimension if isinstance(key, dg.MultiPartitionKey) else None
    if keys is None:
        account, _, day = str(key).partition("|")
    else:
        account, day = keys[ACCOUNT_DIMENSION], keys[DATE_DIMENSION]
    return account, dt.date.fromisoformat(day)


def commands(
    partition_keys: Iterable[str], *, mode: str, resume: bool, concurrency: int
) -> list[list[str]]:
    """The meta-elt arguments that materialize these partitions."""
    out = []
    for key, since, until in ranges(partition_keys):
        tenant, account = parse_account_key(key)
        if mode == "sync":
            lookback = (until - since).days
            out.append(
                ["sync", "--tenant", tenant, "--account", account,
                 "--lookback-days", str(lookback), "--no-build"]
            )  # fmt: skip
        else:
            out.append(
                ["backfill", "--tenant", tenant, "--account", account,
                 "--since", since.isoformat(), "--until", until.isoformat(),
                 "--concurrency", str(concurrency), "--no-build",
                 *(["--resume"] if resume else [])]
            )  # fmt: skip
    return out


def run_meta_elt(
    context: dg.OpExecutionContext | dg.AssetExecutionContext, root: Path, args: list[str]
) -> str:
    """Run meta-elt, its lines into the run's log (Dagster's event log: in PostgreSQL, readable
    from any host). Exit 2 is bad input: fail without retrying; exit 1 is retried."""
    command = [*project.meta_elt_command(root), *args]
    context.log.info("$ meta-elt " + " ".join(args))
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=root,
        env=os.environ.copy(),  # tokens are read by meta-elt itself, from token_env
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    last = ""
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            last = line
            context.log.info(line)
    code = proc.wait()
    seconds = time.monotonic() - started
    if code == 2:
        raise dg.Failure(description=last, allow_retries=False)
    if code != 0:
        raise dg.Failure(description=last or f"meta-elt exited with {code}")
    return f"{' '.join(args[:1])} in {seconds:.0f}s: {last}"


#: Raw tables that are not the insights of a report (not partitioned by day).
UNPARTITIONED_TABLES = frozenset({"accounts", "ads", "adsets", "campaigns", "insights_windows"})


def _spec(source: str, table: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        dg.AssetKey([source, table]),
        group_name="raw_meta",
        description=f"raw_meta.{table}, loaded by meta-elt (tap-facebook → target-postgres)",
        kinds={"meltano", "postgres"},
    )


def unpartitioned_specs(tables: list[str], source: str) -> list[dg.AssetSpec]:
    """The raw tables every load run writes whole-account, not per day: reported by meta_raw."""
    return [_spec(source, t) for t in tables if t in UNPARTITIONED_TABLES]


def build_raw_assets(tables: list[str], source: str) -> dg.AssetsDefinition:
    """One multi-asset over the insights tables of dbt source ``source``'s reports (one meta-elt
    run loads them all); it also reports the run's load of the unpartitioned raw tables."""
    specs = [_spec(source, t) for t in tables if t not in UNPARTITIONED_TABLES]
    others = unpartitioned_specs(tables, source)

    @dg.multi_asset(
        name="meta_raw",
        specs=specs,
        partitions_def=partitions_def(),
        backfill_policy=dg.BackfillPolicy.multi_run(MAX_DAYS_PER_RUN),
        retry_policy=retry_policy(),
        pool=META_API_POOL,
        can_subset=False,
    )
    def meta_raw(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        root = project.project_root()
        mode = context.run.tags.get(MODE_TAG, "backfill")
        concurrency = project.env_int("META_ELT_DAGSTER_JOBS_PER_RUN", 2, minimum=1)
        done = [
            run_meta_elt(context, root, args)
            for args in commands(
                context.partition_keys,
                mode=mode,
                resume=context.retry_number > 0,
                concurrency=concurrency,
            )
        ]
        metadata = {
            "mode": dg.MetadataValue.text(mode),
            "meta-elt": dg.MetadataValue.md("\n".join(done)),
        }
        for other in others:
            context.log_event(dg.AssetMaterialization(asset_key=other.key, metadata=metadata))
        for spec in specs:
            yield dg.MaterializeResult(asset_key=spec.key, metadata=metadata)

    return meta_raw
