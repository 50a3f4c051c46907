"""Progress lines: a long step reports itself periodically, with the tap's windows or dbt's node
count, and stops reporting when it ends."""

from __future__ import annotations

import io
import json
import logging
import time

from tap_meta_insights import progress as tap_progress

from meta_elt import meltano_run
from meta_elt.meltano_run import Progress
from meta_elt.progress import Reporter


def _wait_for(stream: io.StringIO, text: str, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    while stream.getvalue().count(text) < count:
        assert time.monotonic() < deadline, stream.getvalue()
        time.sleep(0.01)
    return stream.getvalue().splitlines()


def test_a_step_reports_its_windows_periodically_and_stops_when_it_ends():
    stream = io.StringIO()
    reporter = Reporter(stream, plain_every=0.02)
    progress = Progress(windows_done=3, windows_total=12, rows=1500)
    with reporter.activity("backfill act_1") as step:
        _wait_for(stream, "meta-elt: progress: backfill act_1: elapsed", 1)
        step.update(progress)
        lines = _wait_for(stream, "windows 3/12, rows 1,500", 2)
    assert all(line.startswith("meta-elt: progress: backfill act_1: ") for line in lines)
    after = stream.getvalue()
    time.sleep(0.1)
    assert stream.getvalue() == after, "nothing is reported once the step ended"


def test_a_dbt_step_reports_dbt_s_node_count():
    stream = io.StringIO()
    reporter = Reporter(stream, plain_every=0.02)
    with reporter.activity("dbt build_meta") as step:
        step.line_seen("17:46:41  12 of 88 START sql view model analytics_staging.stg ... [RUN]")
        step.line_seen("17:46:41  12 of 88 OK created sql view model analytics_staging.stg")
        _wait_for(stream, "dbt build_meta: 12 of 88 dbt nodes done, elapsed", 1)


def test_the_cli_reads_the_taps_progress_metric(caplog):
    """The contract between two programs: what tap_meta_insights.progress writes (a Singer
    metric on the SDK's metrics logger), relayed by Meltano's JSON log, is what meta-elt counts."""
    with caplog.at_level(logging.INFO, logger="singer_sdk.metrics"):
        tap_progress.window_done(
            stream="insights_ad",
            account_id="act_7",
            date_start="2026-01-01",
            date_stop="2026-01-31",
            rows=930,
            windows_done=3,
            windows_total=12,
            rows_total=2790,
        )
    (record,) = caplog.records
    stderr_line = f"2026-11-30 10:00:00,000 | INFO | singer_sdk.metrics | {record.getMessage()}"
    relayed = json.dumps({"event": stderr_line, "level": "info", "name": "tap-facebook"})
    tags = meltano_run.progress_event(meltano_run._message(relayed))
    assert tags is not None and tags["rows"] == 930 and tags["windows_total"] == 12
    progress = Progress()
    progress.update(tags)
    assert (progress.windows_done, progress.windows_total, progress.rows) == (1, 12, 930)
    # Neither the human log sentence nor another metric counts as a window.
    assert meltano_run.progress_event("Window done: insights_ad act_7 2026-01: 930 rows") is None
    other = 'METRIC: {"type":"counter","metric":"record_count","value":5,"tags":{}}'
    assert meltano_run.progress_event(other) is None
