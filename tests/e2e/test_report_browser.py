"""The HTML report in a real browser: headless Chromium (Debian's), driven over the DevTools
protocol (aiohttp's websocket client), loads the page from file://, waits until every chart has
rendered, reads the DOM, records every network request the page makes, and takes a full-page
screenshot that stays in the test's tmp dir for a person to look at.

Chromium comes from Debian (`apt-get install chromium`): installed here when missing and running
as root (CI), else the test fails saying how to install it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from meta_elt import report
from tests import browser

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


@dataclass
class Rendered:
    state: str  # body[data-rendered]: "ok" once every chart has rendered, "error" if one failed
    texts: list[str]  # the text of every SVG <text> (axis titles and labels, legends, titles)
    html: str  # the DOM after rendering
    requests: list[str] = field(default_factory=list)  # every URL the page requested
    errors: list[str] = field(default_factory=list)  # exceptions and console errors
    screenshot: Path | None = None


async def _render(page: Path, screenshot: Path | None, timeout: float) -> Rendered:
    # Whatever the page might request goes nowhere (and is still recorded below).
    async with browser.page(
        1200,
        900,
        domains=("Network", "Page", "Runtime", "Log"),
        extra_args=("--proxy-server=127.0.0.1:9",),
        timeout=timeout,
    ) as tools:
        await tools.call("Page.navigate", url=page.resolve().as_uri())
        deadline = asyncio.get_running_loop().time() + timeout
        state = None
        while asyncio.get_running_loop().time() < deadline:
            state = await tools.evaluate("document.body && document.body.dataset.rendered")
            if state in ("ok", "error"):
                break
            await asyncio.sleep(0.2)
        texts = await tools.evaluate(
            "Array.from(document.querySelectorAll('svg text'), t => t.textContent)"
        )
        dom = await tools.evaluate("document.documentElement.outerHTML")
        shot = None
        if screenshot is not None:
            metrics = await tools.call("Page.getLayoutMetrics")
            height = int(metrics["cssContentSize"]["height"]) + 1
            await tools.call(
                "Emulation.setDeviceMetricsOverride",
                width=1200,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            image = await tools.call("Page.captureScreenshot", format="png")
            screenshot.write_bytes(base64.b64decode(image["data"]))
            shot = screenshot
        events = tools.events
    requests = [
        e["params"]["request"]["url"]
        for e in events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    errors = [
        str(e["params"])[:500]
        for e in events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    return Rendered(str(state), list(texts or []), str(dom), requests, errors, shot)


def render(page: Path, screenshot: Path | None = None, timeout: float = 60) -> Rendered:
    """Load ``page`` from file:// in headless Chromium, wait for its charts, read the DOM."""
    return asyncio.run(_render(page, screenshot, timeout))


def offline(requests: list[str]) -> list[str]:
    """The requests that left the file: (URLs other than file:, data:, blob:, about:)."""
    return [u for u in requests if not u.startswith(("file:", "data:", "blob:", "about:"))]


def assert_report_rendered(rendered: Rendered, accounts: list[report.Account]) -> None:
    """What an analyst needs on the page, checked in the rendered DOM."""
    assert rendered.state == "ok", (rendered.state, rendered.errors)
    assert rendered.errors == []
    assert offline(rendered.requests) == [], "the report must work offline"
    texts = set(rendered.texts)
    for account in accounts:
        assert account.label() in texts, account  # chart titles name the account
        assert f"Spend per day ({account.currency})" in texts  # y-axis title with currency
    assert "Conversions per day" in texts
    for name, _colour, _text in report.DAY_STATES:  # the calendar's legend
        assert name in texts, name
    for name in (report.SERIES_DAILY, report.SERIES_AVERAGE, report.KIND_PARTIAL):
        assert name in texts, name  # the spend legend
    assert "today, partial" in texts  # today's partial day is marked
    assert "Duration (seconds)" in texts  # run timings
    months = {
        t
        for t in texts
        if re.fullmatch(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)( \d{4})?", t)
    }
    assert len(months) >= 3, sorted(texts)  # month ticks and calendar month labels


def _world() -> report.ReportData:
    """Three accounts in SEK, EUR, AUD and three time zones, about three months each."""
    accounts = [
        report.Account("t-nordic", "act_100001", "Nordic Shoes AB", "SEK", "Europe/Stockholm"),
        report.Account("t-nordic", "act_100002", "Nordic Outdoor Oy", "EUR", "Europe/Helsinki"),
        report.Account("t-bondi", "act_100003", "Bondi Surf Co", "AUD", "Australia/Sydney"),
    ]
    data = report.ReportData(accounts, {}, {}, {}, [])
    for n, account in enumerate(accounts):
        key = (account.tenant_id, account.account_id)
        today = account.today(NOW)
        first = dt.date(2026, 8, 20)
        days, day = [], first
        while day <= today:
            quiet = day.day == 5  # a day without delivery each month
            spend = Decimal(0) if quiet else Decimal(1000 + 37 * (day.toordinal() % 11)) / (n + 1)
            days.append(
                report.Day(day, spend, Decimal(0 if quiet else 3 + day.day % 7), spend * 3,
                           0 if quiet else 5000, 0 if quiet else 80, not quiet)
            )  # fmt: skip
            day += dt.timedelta(days=1)
        data.days[key] = days
        synced = {d.date for d in days}
        for level in report.LEVELS:
            data.synced_days[(*key, level)] = set(synced)
            data.level_days[(*key, level)] = {d.date for d in days if d.has_delivery}
        data.level_days[(*key, "account")] = set(synced)
        data.coverage += [
            (account.tenant_id, account.account_id, level, 100, first, today, len(synced), 0)
            for level in report.LEVELS
        ]
    # act_100002 lost a day of ad rows: the calendar shows it missing.
    data.level_days[("t-nordic", "act_100002", "ad")].discard(dt.date(2026, 9, 15))
    return data


def test_report_renders_offline_with_axes_legends_and_month_labels(tmp_path):
    data = _world()
    page = report.write_html(
        tmp_path / "report.html",
        data,
        now=NOW,
        reconciliation=[("Nordic Retail Group", "act_100001", Decimal(1), Decimal(1))],
        timings=[("backfill", 12.5), ("daily sync", 3.25), ("total", 15.75)],
        tenant_names={"t-nordic": "Nordic Retail Group", "t-bondi": "Bondi Surf"},
    )
    assert page.stat().st_size < 2_000_000  # the inlined Vega bundle is ~0.9 MB
    rendered = render(page, tmp_path / "report.png")
    (tmp_path / "report.dom.html").write_text(rendered.html, encoding="utf-8")
    print(f"screenshot: {rendered.screenshot}")
    assert_report_rendered(rendered, data.accounts)
    assert rendered.screenshot is not None and rendered.screenshot.stat().st_size > 50_000
    # The headers of the tables, the status column's included.
    assert "<th>check</th>" in rendered.html and "<th>currency, time zone</th>" in rendered.html
    assert "MISMATCH" not in rendered.html
    # Sydney is already on 1 December at 12:00 UTC: its partial day is its own today.
    assert "Sun 30 Nov" not in rendered.html  # no tooltip is open


def test_the_browser_check_sees_requests_and_failures(tmp_path):
    """The check can fail: a page that loads a script from the network and never renders."""
    page = tmp_path / "online.html"
    page.write_text(
        "<!doctype html><body><script src='http://cdn.example.invalid/vega.js'></script>"
        "<script>vegaEmbed('#x', {})</script></body>",
        encoding="utf-8",
    )
    rendered = render(page, timeout=3)
    assert offline(rendered.requests) == ["http://cdn.example.invalid/vega.js"]
    assert rendered.state != "ok"
    assert rendered.errors  # vegaEmbed is not defined
