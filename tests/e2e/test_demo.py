"""`meta-elt demo` (what `make demo` runs), small: the main job end to end, nothing left running."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from meta_elt import postgres, report
from tests.e2e.test_report_browser import assert_report_rendered, render
from tests.support import FIXTURES, ROOT


def _stamp(path: Path) -> tuple[int, int] | None:
    return (path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else None


@pytest.fixture
def demo_database(pg_server: postgres.Server) -> Iterator[str]:
    """The demo's own database, named after the tests' (`make test`'s is a scratch database of
    its own, so runs never share one); dropped afterwards when this test created it."""
    name = f"{pg_server.database}_demo"
    with pg_server.connect(autocommit=True) as conn:
        existed = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
    yield name
    if not existed:
        postgres.drop_database(dataclasses.replace(pg_server, database=name))


def test_demo_runs_end_to_end_and_stops_what_it_started(pg_server, demo_database, tmp_path):
    users_report = ROOT / "output" / "demo-report.html"
    before = _stamp(users_report)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAP_FACEBOOK_")},
        **pg_server.libpq_env(),
        "META_ELT_DEMO_DATABASE": demo_database,
        "META_ELT_DEMO_WORLD": str(FIXTURES / "demo_world_small.yml"),
        "META_ELT_DEMO_MONTHS": "2",
    }
    env.pop("META_ELT_TENANTS", None)  # the shipped registry, as a newcomer has it
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "meta-elt"), "demo", "--report", str(tmp_path / "r.html")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout

    coverage = [line.split() for line in out.splitlines() if re.match(r"^\S+…\s+act_", line)]
    levels = {(row[1], row[2]) for row in coverage}
    assert levels == {
        (account, level)
        for account in ("act_100001", "act_100002", "act_100003")
        for level in ("account", "campaign", "adset", "ad")
    }
    assert all(row[-1] == "0" for row in coverage), "no missing days"
    reconciled = [
        line for line in out.splitlines() if re.search(r"\sact_10000\d\s+[\d,.]+\s+[\d,.]+\s", line)
    ]
    assert len(reconciled) == 3 and all(line.rstrip().endswith("ok") for line in reconciled)

    page = tmp_path / "r.html"
    assert f"Report: {page}" in out
    assert _stamp(users_report) == before, "the test must not touch the user's report"
    # The report in a real browser, on the demo's data: axes in each account's currency,
    # account names, legends, month labels, offline; the screenshot stays in tmp_path.
    rendered = render(page, tmp_path / "demo-report.png")
    print(f"screenshot: {rendered.screenshot}")
    assert_report_rendered(
        rendered,
        [
            report.Account("", "act_100001", "Nordic Shoes AB", "SEK", "Europe/Stockholm"),
            report.Account("", "act_100002", "Nordic Outdoor Oy", "EUR", "Europe/Helsinki"),
            report.Account("", "act_100003", "Bondi Surf Co", "AUD", "Australia/Sydney"),
        ],
    )
    assert rendered.html.count("ok: equal") == 3

    sandbox_url = re.search(r"Graph API sandbox: (http://\S+)", out)[1]
    try:
        urllib.request.urlopen(f"{sandbox_url}/__sandbox/world", timeout=3)
        raise AssertionError("the sandbox still answers after the demo")
    except (urllib.error.URLError, ConnectionError):
        pass
