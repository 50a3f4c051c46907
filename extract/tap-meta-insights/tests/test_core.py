"""The Singer SDK's standard tap tests (discovery, sync, stream attributes) against the sandbox.

A small world (one account, four ads) and a week of days keep them fast. The sandbox starts
when the module is imported — ``get_tap_test_class`` needs the config, with the sandbox's URL,
when the test class is built — and stops when the test session ends.
"""

from __future__ import annotations

import atexit
import datetime as dt

from meta_sandbox.testing import SandboxServer
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from tap_meta_insights.tap import TapMetaInsights

TOKEN = "tok-core-5c1e"
ACCOUNT = "act_3003"
WORLD = {
    "seed": 3,
    "tokens": [{"token": TOKEN, "accounts": [ACCOUNT]}],
    "accounts": [
        {
            "id": ACCOUNT,
            "timezone_name": "UTC",
            "history_days": 60,
            "campaigns": 2,
            "adsets_per_campaign": 1,
            "ads_per_adset": 2,
        }
    ],
}

_SANDBOX = SandboxServer(world=WORLD, time_scale=0.0001).start()
atexit.register(_SANDBOX.stop)

_TODAY = dt.datetime.now(dt.UTC).date()
CONFIG = {
    "access_token": TOKEN,
    "account_ids": ACCOUNT,
    "start_date": (_TODAY - dt.timedelta(days=6)).isoformat(),
    "end_date": (_TODAY - dt.timedelta(days=1)).isoformat(),
    "api_url": _SANDBOX.base_url,
    "poll_interval": 0.01,
    "max_retry_wait": 0.2,
    "reports": [
        {"name": "ad", "level": "ad"},
        {"name": "ad_by_age_gender", "level": "ad", "breakdowns": ["age", "gender"]},
    ],
}

TestTapMetaInsights = get_tap_test_class(
    TapMetaInsights,
    config=CONFIG,
    suite_config=SuiteConfig(max_records_limit=None),
)
