"""The code location: `dagster ... -m meta_elt_dagster.definitions`.

Built from the project's files: the raw assets from the dbt manifest's source `meta_ads`
(partitioned by tenant-account x day; the tenant-accounts come from tenants.yml through a sensor),
the dbt assets from the manifest and the scheduled build's selection (built whole after loads by
a sensor), the schedule from Meltano's `daily-meta-insights` cron. The manifest is parsed at load
when missing (`transform/target/dagster/manifest.json`; `meta-elt-dagster serve` parses it
afresh).
"""

from __future__ import annotations

import os

import dagster as dg

from meta_elt_dagster import automation, marts, project, raw

# A load run materializes up to 92 day partitions per report in one output: Dagster writes them
# as one batch (one INSERT) only when event batching is on; one at a time, each on a new
# PostgreSQL connection, they took most of a small run's time (measured: 50 of 90 s). Set here,
# in the code every run worker imports, so it holds on any run launcher (read per event).
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")

ROOT = project.project_root()
DBT = marts.dbt_project(ROOT)
marts.prepare(DBT)

RAW_TABLES = marts.raw_tables(DBT.manifest_path)
meta_raw = raw.build_raw_assets(RAW_TABLES, marts.RAW_SOURCE)
meta_marts = marts.build_dbt_assets(ROOT, DBT)

meta_raw_job = dg.define_asset_job(
    automation.RAW_JOB,
    selection=dg.AssetSelection.assets(meta_raw),
    description="Raw tables of tenant-account x day partitions, loaded by meta-elt.",
)

defs = dg.Definitions(
    assets=[meta_raw, *raw.unpartitioned_specs(RAW_TABLES, marts.RAW_SOURCE), meta_marts],
    jobs=[meta_raw_job, automation.sync_tenant_now],
    schedules=[automation.build_schedule(project.daily_cron(ROOT))],
    sensors=[
        automation.build_registry_sensor(),
        automation.build_sync_now_sensor(meta_raw_job),
        automation.build_marts_sensor(list(meta_raw.keys), meta_marts),
    ],
    resources={"dbt_cli": marts.cli_resource(DBT)},
    executor=dg.in_process_executor,
)
