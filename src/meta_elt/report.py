"""The demo's report, built from the marts: a console summary and a static HTML page.

The HTML has no dependencies and no scripts: inline SVG charts of daily spend per account, a
coverage calendar per account and level, and the run's timings.
"""

from __future__ import annotations

import datetime as dt
import html
import sys
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import psycopg

from meta_elt import marts
from meta_elt.progress import Reporter

LEVELS = ("account", "campaign", "adset", "ad")


def coverage_rows(conn: psycopg.Connection) -> list[tuple]:
    """(tenant, account, level, rows, first date, last date, missing days) for every account."""
    return conn.execute(
        f"""
        select tenant_id::text, ad_account_id, level, rows, first_date, last_date, missing_days
        from "{marts.marts_schema()}".meta_insights_coverage
        order by 1, 2, array_position(array['account', 'campaign', 'adset', 'ad'], level::text)
        """
    ).fetchall()


def daily_spend(conn: psycopg.Connection) -> list[tuple[str, dt.date, Decimal]]:
    """(account, date, spend) at account level: one row per synced day."""
    return conn.execute(
        f"""
        select ad_account_id, date, spend
        from "{marts.marts_schema()}".meta_insights_levels
        where level = 'account'
        order by 1, 2
        """
    ).fetchall()


def days_present(conn: psycopg.Connection) -> dict[tuple[str, str], set[dt.date]]:
    present: dict[tuple[str, str], set[dt.date]] = defaultdict(set)
    for account, level, day in conn.execute(
        f"""
        select distinct ad_account_id, level, date
        from "{marts.marts_schema()}".meta_insights_levels
        """
    ):
        present[(account, level)].add(day)
    return present


def print_summary(coverage: Sequence[tuple], reconciliation: Sequence[tuple]) -> bool:
    """Print both tables; True when nothing is missing and every spend total matches."""
    out = Reporter(sys.stdout)
    headers = ("tenant", "account", "level", "rows", "first date", "last date", "missing days")
    out.table(headers, [(t[:8] + "…", *rest) for t, *rest in coverage])
    print()
    recon_rows = [
        (name, account, f"{mart:,.2f}", f"{truth:,.2f}", "ok" if mart == truth else "MISMATCH")
        for name, account, mart, truth in reconciliation
    ]
    out.table(("tenant", "account", "spend (marts)", "spend (sandbox truth)", ""), recon_rows)
    missing = sum(int(row[6]) for row in coverage)
    mismatched = sum(1 for *_, mart, truth in reconciliation if mart != truth)
    return missing == 0 and mismatched == 0 and bool(coverage)


def _spend_chart(points: list[tuple[dt.date, Decimal]], width: int = 900, height: int = 180) -> str:
    if not points:
        return "<p>No data.</p>"
    top = max((float(s) for _, s in points), default=0.0) or 1.0
    step = width / max(len(points) - 1, 1)
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{i * step:.1f},{height - float(s) / top * (height - 10):.1f}"
        for i, (_, s) in enumerate(points)
    )
    first, last = points[0][0], points[-1][0]
    return (
        f'<svg viewBox="0 0 {width} {height + 20}" width="100%" role="img" '
        f'aria-label="daily spend">'
        f'<path d="{path}" fill="none" stroke="#2563eb" stroke-width="1.5"/>'
        f'<text x="0" y="{height + 16}" font-size="11">{first}</text>'
        f'<text x="{width}" y="{height + 16}" font-size="11" text-anchor="end">{last}</text>'
        f'<text x="4" y="12" font-size="11">max {top:,.2f}</text></svg>'
    )


def _calendar(days: set[dt.date], first: dt.date, last: dt.date) -> str:
    """One square per day (weeks as columns): green = rows present, grey = no rows."""
    cell = 9
    start = first - dt.timedelta(days=first.weekday())
    weeks = (last - start).days // 7 + 1
    squares = []
    day = first
    while day <= last:
        column, row = (day - start).days // 7, day.weekday()
        colour = "#16a34a" if day in days else "#e5e7eb"
        squares.append(
            f'<rect x="{column * (cell + 1)}" y="{row * (cell + 1)}" width="{cell}" '
            f'height="{cell}" fill="{colour}"><title>{day}</title></rect>'
        )
        day += dt.timedelta(days=1)
    return (
        f'<svg viewBox="0 0 {weeks * (cell + 1)} {7 * (cell + 1)}" '
        f'width="{weeks * (cell + 1)}" height="{7 * (cell + 1)}">{"".join(squares)}</svg>'
    )


def write_html(
    path: Path,
    coverage: Sequence[tuple],
    spend: Sequence[tuple[str, dt.date, Decimal]],
    reconciliation: Sequence[tuple],
    timings: Sequence[tuple[str, float]],
    present: dict[tuple[str, str], set[dt.date]] | None = None,
) -> Path:
    by_account: dict[str, list[tuple[dt.date, Decimal]]] = defaultdict(list)
    for account, day, amount in spend:
        by_account[account].append((day, amount))
    esc = html.escape
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Meta insights ELT: demo report</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2rem;max-width:1000px}"
        "table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #ddd;"
        "text-align:left}h2{margin-top:2rem}</style>",
        "<h1>Meta insights ELT: demo report</h1>",
        f"<p>Built from the marts on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.</p>",
        "<h2>Daily spend per account</h2>",
    ]
    for account, points in sorted(by_account.items()):
        parts.append(f"<h3>{esc(account)}</h3>{_spend_chart(points)}")
    parts.append("<h2>Spend reconciled against the sandbox's truth</h2><table>")
    parts.append("<tr><th>tenant</th><th>account</th><th>marts</th><th>truth</th><th></th></tr>")
    for name, account, mart, truth in reconciliation:
        verdict = "ok" if mart == truth else "MISMATCH"
        parts.append(
            f"<tr><td>{esc(name)}</td><td>{esc(account)}</td><td>{mart:,.2f}</td>"
            f"<td>{truth:,.2f}</td><td>{verdict}</td></tr>"
        )
    parts.append("</table><h2>Coverage</h2><table><tr><th>account</th><th>level</th><th>rows</th>")
    parts.append("<th>first</th><th>last</th><th>missing days</th><th>calendar</th></tr>")
    for _tenant, account, level, rows, first, last, missing in coverage:
        days = (present or {}).get((account, level), set())
        calendar = _calendar(days, first, last) if first and last else ""
        parts.append(
            f"<tr><td>{esc(account)}</td><td>{esc(str(level))}</td><td>{rows:,}</td>"
            f"<td>{first}</td><td>{last}</td><td>{missing}</td><td>{calendar}</td></tr>"
        )
    parts.append("</table><h2>Run timings</h2><table>")
    for name, seconds in timings:
        parts.append(f"<tr><td>{esc(name)}</td><td>{seconds:.1f} s</td></tr>")
    parts.append("</table>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
