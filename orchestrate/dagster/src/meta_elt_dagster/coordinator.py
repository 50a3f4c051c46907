"""The run queue of the instance: Dagster's QueuedRunCoordinator, plus one run tag.

Meta's per-account limit is a run-tag limit per unique value (dagster.yaml: `meta_elt/account`,
limit 1, applyLimitPerUniqueValue). Dagster tags a run of one partition with each dimension's key,
but a run of a partition range (a backfill policy's run, the schedule's) only with the range's
two ends; so before a run is queued its account is tagged here from those tags (docs/
DECISIONLOG.md). Runs of unpartitioned assets (the dbt build) get `meta_elt/marts`.
"""

from __future__ import annotations

from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

ACCOUNT_TAG = "meta_elt/account"
MARTS_TAG = "meta_elt/marts"
ACCOUNT_DIMENSION_TAG = f"{PARTITION_NAME_TAG}/account"


def account_of(tags: dict[str, str]) -> str | None:
    """The one tenant-account a run's partitions belong to, if they belong to one."""
    if tags.get(ACCOUNT_DIMENSION_TAG):
        return tags[ACCOUNT_DIMENSION_TAG]
    start = tags.get(ASSET_PARTITION_RANGE_START_TAG, "")
    end = tags.get(ASSET_PARTITION_RANGE_END_TAG, "")
    if "|" in start and start.split("|")[0] == end.split("|")[0]:
        return start.split("|")[0]
    single = tags.get(PARTITION_NAME_TAG, "")
    if "|" in single:
        return single.split("|")[0]
    return None


def extra_tags(run: DagsterRun) -> dict[str, str]:
    account = account_of(dict(run.tags))
    if account:
        return {ACCOUNT_TAG: account}
    partitioned = any(
        k in run.tags
        for k in (ASSET_PARTITION_RANGE_START_TAG, PARTITION_NAME_TAG, ACCOUNT_DIMENSION_TAG)
    )
    if run.asset_selection and not partitioned:
        return {MARTS_TAG: "build"}
    return {}


class MetaRunCoordinator(QueuedRunCoordinator):
    """QueuedRunCoordinator (same config) that tags each run's account before queueing it."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        tags = {k: v for k, v in extra_tags(run).items() if run.tags.get(k) != v}
        if tags:
            self._instance.add_run_tags(run.run_id, tags)
            run = self._instance.get_run_by_id(run.run_id) or run
        return super().submit_run(context._replace(dagster_run=run))
