"""When raw partitions are materialized: the daily schedule, "sync now" for a tenant, and the
sensor that keeps the tenant-account partitions in step with the tenants registry; when the
marts are built: the sensor `build_marts_after_loads`."""

import datetime as dt
import os
from collections.abc import Iterator

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from meta_elt_dagster import project, registry
from meta_elt_dagster.raw import MODE_TAG, TENANT_ACCOUNTS, TENANTS

RAW_JOB = "meta_raw_job"
SYNC_NOW_JOB = "sync_tenant_now"


def lookback_days() -> int:
    """Days the daily sync re-reads (late attribution), as `meta-elt sync --lookback-days`."""
    return project.env_int("META_ELT_DAGSTER_LOOKBACK_DAYS", 28)


def sync_request(account_key: str, today: dt.date, run_key: str) -> dg.RunRequest:
    """One run of one tenant-account: `meta-elt sync` over [today - lookback, today]."""
    since = today - dt.timedelta(days=lookback_days())
    return dg.RunRequest(
        run_key=run_key,
        job_name=RAW_JOB,
        tags={
            MODE_TAG: "sync",
            ASSET_PARTITION_RANGE_START_TAG: f"{account_key}|{since.isoformat()}",
            ASSET_PARTITION_RANGE_END_TAG: f"{account_key}|{today.isoformat()}",
        },
    )


def _known(instance: dg.DagsterInstance, wanted: list[str]) -> tuple[list[str], list[str]]:
    present = set(instance.get_dynamic_partitions(TENANT_ACCOUNTS.name or ""))
    return [k for k in wanted if k in present], [k for k in wanted if k not in present]


def schedule_default_status() -> dg.DefaultScheduleStatus:
    """Running unless META_ELT_DAGSTER_SCHEDULE=stopped (staging, tests: start it in the UI)."""
    value = os.environ.get("META_ELT_DAGSTER_SCHEDULE", "running")
    if value not in ("running", "stopped"):
        raise project.ConfigError(
            f"META_ELT_DAGSTER_SCHEDULE={value!r} is not running or stopped; give one of them"
        )
    return dg.DefaultScheduleStatus(value.upper())


def build_schedule(cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_meta_insights",
        cron_schedule=cron,
        job_name=RAW_JOB,
        execution_timezone="UTC",
        default_status=schedule_default_status(),
        description=(
            "The daily sync (Meltano's daily-meta-insights cron): one run per tenant-account, "
            "`meta-elt sync` re-reading the lookback; the marts build once they have landed."
        ),
    )
    def daily_meta_insights(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        today = tick.astimezone(dt.UTC).date()
        keys = registry.account_keys(registry.load(project.project_root()))
        ready, missing = _known(context.instance, keys)
        if missing:
            context.log.warning(
                f"not yet partitions (the registry sensor adds them): {', '.join(missing)}"
            )
        if not ready:
            return dg.SkipReason("no tenant-account partitions yet; is the registry sensor on?")
        return [sync_request(key, today, f"{today}:{key}") for key in ready]

    return daily_meta_insights


def build_registry_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name="tenant_accounts_from_registry",
        minimum_interval_seconds=project.env_int("META_ELT_DAGSTER_REGISTRY_SECONDS", 30, 1),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Keeps the tenant-account and tenant partitions equal to tenants.yml.",
    )
    def tenant_accounts_from_registry(context: dg.SensorEvaluationContext):
        tenants = registry.load(project.project_root())  # a bad registry fails the tick
        requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
        for definition, wanted in (
            (TENANT_ACCOUNTS, registry.account_keys(tenants)),
            (TENANTS, [t.id for t in tenants]),
        ):
            name = definition.name or ""
            present = set(context.instance.get_dynamic_partitions(name))
            added = [k for k in wanted if k not in present]
            removed = sorted(present - set(wanted))
            if added:
                requests.append(definition.build_add_request(added))
            if removed:
                requests.append(definition.build_delete_request(removed))
        if not requests:
            return dg.SkipReason(f"in step with the registry ({len(tenants)} tenant(s))")
        return dg.SensorResult(dynamic_partitions_requests=requests)

    return tenant_accounts_from_registry


@dg.op(description="Records a 'sync now' request; the sync_now_requested sensor runs it.")
def request_sync(context: dg.OpExecutionContext) -> None:
    context.log.info(f"sync requested for tenant {context.partition_key}")


sync_tenant_now = dg.JobDefinition(
    graph_def=dg.GraphDefinition(name=SYNC_NOW_JOB, node_defs=[request_sync]),
    partitions_def=TENANTS,
    description=(
        "The admin button: pick a tenant (partition) and launch; one `meta-elt sync` run per "
        "account of the tenant follows (sensor sync_now_requested), under the same limits."
    ),
)


def build_sync_now_sensor(raw_job) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        name="sync_now_requested",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[sync_tenant_now],
        request_job=raw_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=project.env_int("META_ELT_DAGSTER_REGISTRY_SECONDS", 30, 1),
    )
    def sync_now_requested(context: dg.RunStatusSensorContext) -> Iterator[dg.RunRequest]:
        yield from sync_now_requests(context.instance, context.dagster_run)

    return sync_now_requested


def sync_now_requests(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[dg.RunRequest]:
    tenant = run.tags.get("dagster/partition", "")
    today = dt.datetime.now(dt.UTC).date()
    present = instance.get_dynamic_partitions(TENANT_ACCOUNTS.name or "")
    keys = [k for k in present if tenant and k.startswith(f"{tenant}:")]
    return [sync_request(key, today, f"{run.run_id}:{key}") for key in sorted(keys)]


#: Runs not finished yet (queued ones included): a load among them means more loads are coming.
ACTIVE = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _latest_materialization(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> list[int]:
    """The storage id of each key's latest materialization (0: never materialized)."""
    records = {r.asset_entry.asset_key: r.asset_entry for r in instance.get_asset_records(keys)}
    out = []
    for key in keys:
        entry = records.get(key)
        last = entry.last_materialization_record if entry else None
        out.append(last.storage_id if last else 0)
    return out


def marts_build_decision(
    instance: dg.DagsterInstance,
    raw_keys: list[dg.AssetKey],
    marts_keys: list[dg.AssetKey],
    cursor: int,
) -> tuple[int, str | None]:
    """(the cursor to keep, why not to build now or None to build). The cursor is the newest
    load a build was requested for or found unneeded; a load waiting for others keeps it."""
    newest_load = max(_latest_materialization(instance, raw_keys), default=0)
    if newest_load <= cursor:
        return cursor, "no load since the last build request"
    if newest_load < min(_latest_materialization(instance, marts_keys), default=0):
        return newest_load, "the marts are newer than every load"
    raw, marts = set(raw_keys), set(marts_keys)
    loading = building = 0
    for record in instance.get_run_records(dg.RunsFilter(statuses=ACTIVE)):
        selection = set(record.dagster_run.asset_selection or ())
        loading += bool(record.dagster_run.job_name == RAW_JOB or selection & raw)
        building += bool(selection & marts)
    if loading:
        return cursor, f"waiting for {loading} load run(s) in flight"
    if building:
        return cursor, "a build of the marts is in flight"
    for backfill in instance.get_backfills(status=BulkActionStatus.REQUESTED):
        if set(backfill.asset_selection or ()) & marts:
            return cursor, f"backfill {backfill.backfill_id} builds the marts itself"
    return newest_load, None


def build_marts_sensor(raw_keys: list[dg.AssetKey], marts: dg.AssetsDefinition):
    """The marts, built whole in one run once new loads have landed and none is in flight (the
    daily sync's runs and "sync now" only load). One run, not one per model as its own parents
    land: every dbt test then meets built models, and a day's build is one dbt invocation."""
    marts_keys = sorted(marts.keys, key=lambda k: k.to_user_string())

    @dg.sensor(
        name="build_marts_after_loads",
        target=marts,
        minimum_interval_seconds=project.env_int("META_ELT_DAGSTER_REGISTRY_SECONDS", 30, 1),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Builds the marts (one dbt build) once new raw loads have landed and no "
        "load is queued or running.",
    )
    def build_marts_after_loads(context: dg.SensorEvaluationContext):
        cursor, wait = marts_build_decision(
            context.instance, raw_keys, marts_keys, int(context.cursor or 0)
        )
        context.update_cursor(str(cursor))
        if wait:
            return dg.SkipReason(wait)
        return dg.RunRequest(run_key=f"marts-after-{cursor}", asset_selection=marts_keys)

    return build_marts_after_loads
