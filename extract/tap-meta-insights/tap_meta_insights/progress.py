"""The tap's machine-readable progress: one Singer metric per completed report window.

Singer taps report measurements as ``METRIC: <json>`` log lines (the SDK's record counts and
request timings use the same channel and logger). Each completed window adds one:

    METRIC: {"type":"counter","metric":"window_count","value":1,"tags":{"stream":"insights_ad",
    "account_id":"act_1","date_start":"2026-01-01","date_stop":"2026-01-31","rows":930,
    "windows_done":3,"windows_total":12,"rows_total":2790}}

Callers (meta-elt's progress display) read these lines, never the human log sentence next to
them. The contract is in docs/CONTRACTS.md.
"""

from __future__ import annotations

import json

from singer_sdk.metrics import get_metrics_logger

WINDOW_METRIC = "window_count"


def window_done(
    *,
    stream: str,
    account_id: str,
    date_start: str,
    date_stop: str,
    rows: int,
    windows_done: int,
    windows_total: int,
    rows_total: int,
) -> None:
    """Report one completed window on the SDK's metrics logger."""
    point = {
        "type": "counter",
        "metric": WINDOW_METRIC,
        "value": 1,
        "tags": {
            "stream": stream,
            "account_id": account_id,
            "date_start": date_start,
            "date_stop": date_stop,
            "rows": rows,
            "windows_done": windows_done,
            "windows_total": windows_total,
            "rows_total": rows_total,
        },
    }
    get_metrics_logger().info("METRIC: %s", json.dumps(point, separators=(",", ":")))
