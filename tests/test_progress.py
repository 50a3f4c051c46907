"""Progress lines: a long step reports itself periodically, with the tap's windows or dbt's node
count, and stops reporting when it ends."""

from __future__ import annotations

import io
import time

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
