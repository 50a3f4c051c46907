"""`meta-elt demo` (what `make demo` runs), small: the main job end to end, nothing left running."""

from __future__ import annotations

import os
import re
import subprocess
import urllib.error
import urllib.request
from html.parser import HTMLParser

from tests.support import FIXTURES, ROOT


def test_demo_runs_end_to_end_and_stops_what_it_started(pg_server):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAP_FACEBOOK_")},
        **pg_server.libpq_env(),
        "META_ELT_DEMO_DATABASE": "meta_elt_demo_test",
        "META_ELT_DEMO_WORLD": str(FIXTURES / "demo_world_small.yml"),
        "META_ELT_DEMO_MONTHS": "2",
    }
    env.pop("META_ELT_TENANTS", None)  # the shipped registry, as a newcomer has it
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "meta-elt"), "demo"],
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

    report = ROOT / "output" / "demo-report.html"
    assert f"Report: {report}" in out
    parser = HTMLParser()
    parser.feed(report.read_text(encoding="utf-8"))
    assert report.read_text(encoding="utf-8").count("<svg") >= 3 + 12  # charts + calendars

    sandbox_url = re.search(r"Graph API sandbox: (http://\S+)", out)[1]
    try:
        urllib.request.urlopen(f"{sandbox_url}/__sandbox/world", timeout=3)
        raise AssertionError("the sandbox still answers after the demo")
    except (urllib.error.URLError, ConnectionError):
        pass
