"""The demo's report, built from the marts: a console summary and a self-contained HTML page.

The page is one file that works offline: Vega-Lite charts (specs built and validated with altair)
rendered in the browser by Vega, whose JavaScript is inlined (vl-convert's bundle, ~0.9 MB), plus
plain HTML tables that read without JavaScript. Per account, in the account's currency and time
zone: daily spend and conversions (month ticks, the last 28 days shaded as still attributing,
today marked as a partial day) and a coverage calendar (synced, zero-delivery, still attributing,
partial, missing, not synced); then spend reconciled against a source of truth, coverage per
level, and the run's timings.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from meta_elt import marts
from meta_elt.progress import Reporter

LEVELS = ("account", "campaign", "adset", "ad")
#: Days re-read by every daily sync (`meta-elt sync --lookback-days`, default 28): their
#: conversions can still grow as Meta attributes late conversions.
ATTRIBUTION_DAYS = 28

# Calendar day states, in the legend's order, with their colours and what they mean.
DELIVERED = "synced, delivered"
ZERO = "synced, zero delivery"
ATTRIBUTING = "still attributing"
PARTIAL = "today (partial day)"
MISSING = "missing"
NOT_SYNCED = "not synced"
DAY_STATES: tuple[tuple[str, str, str], ...] = (
    (DELIVERED, "#15803d", "a sync covered this day and the marts have its rows at every level."),
    (
        ZERO,
        "#86efac",
        "a sync covered this day and Meta reported no delivery: the account row is zero-filled "
        "(no spend, impressions or clicks), which is data, not a gap.",
    ),
    (
        ATTRIBUTING,
        "#60a5fa",
        f"synced, but within the last {ATTRIBUTION_DAYS} days: every daily sync re-reads these "
        "days, because Meta keeps attributing conversions to the day of the click or view for "
        f"up to {ATTRIBUTION_DAYS} days. Spend is settled; conversions may still grow.",
    ),
    (
        PARTIAL,
        "#f59e0b",
        "today in the account's time zone (and any later day a sync already covered): the day "
        "is not over, its numbers are partial.",
    ),
    (
        MISSING,
        "#dc2626",
        "a sync covered this day but a level has no row although the account delivered (or the "
        "account level has no row at all): a gap to investigate (`meta-elt verify`).",
    ),
    (
        NOT_SYNCED,
        "#e5e7eb",
        "no sync has covered this day (before the backfill's start, or not synced yet).",
    ),
)
SERIES_DAILY = "daily"
SERIES_AVERAGE = "7-day average"
KIND_FINAL = "settled"
KIND_ATTRIBUTING = f"last {ATTRIBUTION_DAYS} days (may still grow)"
KIND_PARTIAL = "today (partial day)"
COLOURS = {
    SERIES_DAILY: "#93c5fd",
    SERIES_AVERAGE: "#1d4ed8",
    KIND_FINAL: "#15803d",
    KIND_ATTRIBUTING: "#60a5fa",
    KIND_PARTIAL: "#f59e0b",
}
CHART_WIDTH = 860


# --- reading the marts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    tenant_id: str
    account_id: str
    name: str | None
    currency: str | None
    timezone: str | None

    def label(self) -> str:
        return f"{self.name} ({self.account_id})" if self.name else self.account_id

    def today(self, now: dt.datetime) -> dt.date:
        """The account's current day: ``now`` in its time zone (UTC when unknown)."""
        try:
            zone = ZoneInfo(self.timezone) if self.timezone else dt.UTC
        except (ZoneInfoNotFoundError, ValueError):
            zone = dt.UTC
        return now.astimezone(zone).date()


@dataclass(frozen=True)
class Day:
    """One account-level row of meta_insights_levels (default attribution)."""

    date: dt.date
    spend: Decimal
    conversions: Decimal
    conversion_value: Decimal
    impressions: int
    clicks: int
    has_delivery: bool


@dataclass
class ReportData:
    """What the report shows, read from the marts by `load` (or built by a test)."""

    accounts: list[Account]
    #: (tenant, account) → account-level days, by date.
    days: dict[tuple[str, str], list[Day]]
    #: (tenant, account, level) → days with rows in meta_insights_levels.
    level_days: dict[tuple[str, str, str], set[dt.date]] = field(default_factory=dict)
    #: (tenant, account, level) → days a sync covered (stg_meta_ads__insights_windows).
    synced_days: dict[tuple[str, str, str], set[dt.date]] = field(default_factory=dict)
    #: meta_insights_coverage: (tenant, account, level, rows, first, last, synced, missing).
    coverage: list[tuple] = field(default_factory=list)


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


def _exists(conn: psycopg.Connection, schema: str, name: str) -> bool:
    row = conn.execute("select to_regclass(%s)", (f'"{schema}"."{name}"',)).fetchone()
    return row is not None and row[0] is not None


def load(conn: psycopg.Connection) -> ReportData:
    """Everything the HTML report shows, from the marts (and, for time zones and the days the
    syncs covered, the staging views next to them when they are readable)."""
    schema = marts.marts_schema()
    staging = f"{schema}_staging"
    timezones: dict[tuple[str, str], str] = {}
    if _exists(conn, staging, "stg_meta_ads__accounts"):
        for tenant, account, zone in conn.execute(
            f'select tenant_id::text, ad_account_id, timezone_name from "{staging}".'
            "stg_meta_ads__accounts where timezone_name is not null"
        ):
            timezones[(tenant, account)] = zone
    accounts = [
        Account(tenant, account, name, currency, timezones.get((tenant, account)))
        for tenant, account, name, currency in conn.execute(
            f"""
            select distinct on (tenant_id, ad_account_id)
                tenant_id::text, ad_account_id, account_name, currency
            from "{schema}".meta_insights_levels
            where level = 'account'
            order by tenant_id, ad_account_id, (currency is null), (account_name is null),
                date desc
            """
        )
    ]
    days: dict[tuple[str, str], list[Day]] = defaultdict(list)
    for tenant, account, *values in conn.execute(
        f"""
        select tenant_id::text, ad_account_id, date, spend, conversions, conversion_value,
               impressions, clicks, has_delivery
        from "{schema}".meta_insights_levels
        where level = 'account'
        order by 1, 2, 3
        """
    ):
        days[(tenant, account)].append(Day(*values))
    level_days: dict[tuple[str, str, str], set[dt.date]] = defaultdict(set)
    for tenant, account, level, day in conn.execute(
        f"""
        select distinct tenant_id::text, ad_account_id, level, date
        from "{schema}".meta_insights_levels
        """
    ):
        level_days[(tenant, account, level)].add(day)
    synced: dict[tuple[str, str, str], set[dt.date]] = defaultdict(set)
    if _exists(conn, staging, "stg_meta_ads__insights_windows"):
        for tenant, account, level, day in conn.execute(
            f"""
            select distinct tenant_id::text, ad_account_id, level, cast(d as date)
            from "{staging}".stg_meta_ads__insights_windows
            cross join lateral generate_series(date_start, date_stop, interval '1 day') as d
            where level is not null
            """
        ):
            synced[(tenant, account, level)].add(day)
            synced[(tenant, account, "account")].add(day)
    coverage = conn.execute(
        f"""
        select tenant_id::text, ad_account_id, level, rows, first_date, last_date,
               synced_days, missing_days
        from "{schema}".meta_insights_coverage
        order by 1, 2, array_position(array['account', 'campaign', 'adset', 'ad'], level::text)
        """
    ).fetchall()
    return ReportData(accounts, dict(days), dict(level_days), dict(synced), coverage)


# --- the console summary -----------------------------------------------------------------------


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
    out.table(("tenant", "account", "spend (marts)", "spend (sandbox truth)", "check"), recon_rows)
    missing = sum(int(row[6]) for row in coverage)
    mismatched = sum(1 for *_, mart, truth in reconciliation if mart != truth)
    return missing == 0 and mismatched == 0 and bool(coverage)


# --- day states ----------------------------------------------------------------------------------


def day_states(data: ReportData, account: Account, today: dt.date) -> dict[dt.date, tuple]:
    """date → (state, detail) for every day from the account's first synced or reported day to
    its today. Missing follows meta_insights_coverage: a synced day without an account row, or a
    synced day of a level's report with account delivery but no row of that level."""
    key = (account.tenant_id, account.account_id)
    rows = {d.date: d for d in data.days.get(key, [])}
    synced_any = data.synced_days.get((*key, "account"), set())
    has_windows = bool(synced_any)
    candidates = set(rows) | synced_any
    if not candidates:
        return {}
    first = min(candidates)
    last = max(today, max(candidates))
    states: dict[dt.date, tuple] = {}
    day = first
    while day <= last:
        row = rows.get(day)
        synced = day in synced_any if has_windows else row is not None
        gaps = []
        if synced and row is None:
            gaps.append("account")
        if row is not None and row.has_delivery:
            for level in LEVELS[1:]:
                level_synced = day in data.synced_days.get((*key, level), set())
                if level_synced and day not in data.level_days.get((*key, level), set()):
                    gaps.append(level)
        if gaps:
            state = MISSING
            detail = "no rows at level " + ", ".join(gaps)
        elif not synced and row is None:
            state, detail = NOT_SYNCED, "no sync covered this day"
        elif day >= today:
            state, detail = PARTIAL, "the day is not over"
        elif day > today - dt.timedelta(days=ATTRIBUTION_DAYS):
            state = ATTRIBUTING
            detail = "re-read by every daily sync" + (
                "" if row is None or row.has_delivery else "; no delivery"
            )
        elif row is not None and not row.has_delivery:
            state, detail = ZERO, "no delivery (zero-filled)"
        else:
            state, detail = DELIVERED, "rows at every level"
        states[day] = (state, detail)
        day += dt.timedelta(days=1)
    return states


# --- charts (Vega-Lite through altair) -----------------------------------------------------------


def _iso(day: dt.date) -> str:
    # A date-time without an offset: browsers read it as local midnight and Vega shows it in
    # local time, so a day is never shifted by the viewer's time zone.
    return f"{day.isoformat()}T00:00:00"


def _month_axis(alt, title: str | None = None):
    return alt.Axis(
        title=title,
        format="%b %Y",
        # Month names, the year on January and on the first tick.
        labelExpr=(
            "timeFormat(datum.value, month(datum.value) == 0 || datum.index == 0 ? '%b %Y' : '%b')"
        ),
        tickCount={"interval": "month", "step": 1},
        labelAngle=0,
        labelOverlap=True,
        grid=True,
    )


def _trend_chart(account: Account, days: list[Day], today: dt.date) -> dict:
    """Daily spend (with a 7-day average) above daily conversions, one dataset for both."""
    import altair as alt

    currency = account.currency or "currency unknown"
    start_attr = today - dt.timedelta(days=ATTRIBUTION_DAYS - 1)
    domain = [_iso(days[0].date), _iso(max(today, days[-1].date) + dt.timedelta(days=1))]
    complete = [d.spend for d in days if d.date < today]
    rows = []
    for i, d in enumerate(days):
        kind = (
            KIND_PARTIAL
            if d.date >= today
            else KIND_ATTRIBUTING
            if d.date >= start_attr
            else KIND_FINAL
        )
        week = complete[i - 6 : i + 1] if 6 <= i < len(complete) else []
        rows.append(
            {
                "d": _iso(d.date),
                "s": round(float(d.spend), 2),
                "a": round(float(sum(week) / 7), 2) if week else None,
                "c": round(float(d.conversions), 2),
                "q": round(float(d.spend / d.conversions), 2) if d.conversions else None,
                "i": d.impressions,
                "k": d.clicks,
                "t": kind,
            }
        )
    tooltip = [
        alt.Tooltip("d:T", title="day", format="%a %d %b %Y"),
        alt.Tooltip("s:Q", title=f"spend ({currency})", format=",.2f"),
        alt.Tooltip("a:Q", title=f"7-day average ({currency})", format=",.2f"),
        alt.Tooltip("c:Q", title="conversions", format=",.0f"),
        alt.Tooltip("q:Q", title=f"cost per conversion ({currency})", format=",.2f"),
        alt.Tooltip("i:Q", title="impressions", format=","),
        alt.Tooltip("k:Q", title="clicks", format=","),
        alt.Tooltip("t:N", title="day is"),
    ]
    x = alt.X("d:T", title=None, scale=alt.Scale(domain=domain), axis=_month_axis(alt))
    band = (
        alt.Chart(alt.Data(values=[{"from": _iso(start_attr), "to": domain[1]}]))
        .mark_rect(color="#dbeafe", opacity=0.7)
        .encode(
            x=alt.X("from:T", title=None, scale=alt.Scale(domain=domain), axis=_month_axis(alt)),
            x2="to:T",
        )
    )
    band_label = band.mark_text(
        align="right", baseline="top", dx=-4, dy=4, fontSize=11, color="#1e40af"
    ).encode(y=alt.value(0), text=alt.value("still attributing ▸"))
    series = [SERIES_DAILY, SERIES_AVERAGE, KIND_PARTIAL]
    colour_scale = alt.Scale(domain=series, range=[COLOURS[s] for s in series])
    spend_legend = alt.Legend(title="Spend", orient="top", direction="horizontal")
    series_colour = alt.Color("series:N", scale=colour_scale, legend=spend_legend)
    y_spend = alt.Y(
        "s:Q",
        title=f"Spend per day ({currency})",
        axis=alt.Axis(format=",.0f", minExtent=56),
    )
    settled = alt.datum.t != KIND_PARTIAL
    daily = (
        alt.Chart()
        .transform_filter(settled)
        .transform_calculate(series=alt.expr.toString(SERIES_DAILY))
        .mark_line(strokeWidth=1)
        .encode(
            x=x,
            y=y_spend,
            color=series_colour,
            tooltip=tooltip,
        )
    )
    hover = daily.mark_point(size=40, opacity=0, filled=True)
    average = (
        alt.Chart()
        .transform_filter(settled & alt.expr.isValid(alt.datum.a))
        .transform_calculate(series=alt.expr.toString(SERIES_AVERAGE))
        .mark_line(strokeWidth=2.2)
        .encode(
            x=x,
            y=alt.Y("a:Q"),
            color=series_colour,
        )
    )
    partial = (
        alt.Chart()
        .transform_filter(alt.datum.t == KIND_PARTIAL)
        .transform_calculate(series=alt.expr.toString(KIND_PARTIAL))
        .mark_point(shape="diamond", size=140, filled=True, opacity=1)
        .encode(
            x=x,
            y=alt.Y("s:Q"),
            color=series_colour,
            tooltip=tooltip,
        )
    )
    layers = [band, band_label, daily, hover, average, partial]
    first_partial = next((d.date for d in days if d.date >= today), None)
    if first_partial is not None:
        layers.append(
            alt.Chart()
            .transform_filter(alt.expr.isValid(alt.datum.l))
            .mark_text(align="right", dx=-9, dy=-12, fontSize=11, fontWeight="bold")
            .encode(
                x=x,
                y=alt.Y("s:Q"),
                text=alt.value("today, partial"),
                color=alt.value("#b45309"),
            )
        )
    spend = alt.layer(*layers).properties(width=CHART_WIDTH, height=210)
    kinds = [KIND_FINAL, KIND_ATTRIBUTING, KIND_PARTIAL]
    bars = (
        alt.Chart()
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y(
                "c:Q",
                title="Conversions per day",
                axis=alt.Axis(format=",.0f", tickMinStep=1, minExtent=56),
            ),
            color=alt.Color(
                "t:N",
                scale=alt.Scale(domain=kinds, range=[COLOURS[k] for k in kinds]),
                legend=alt.Legend(
                    title="Conversions (default attribution)", orient="top", direction="horizontal"
                ),
            ),
            tooltip=tooltip,
        )
    )
    conversions = alt.layer(band, bars).properties(width=CHART_WIDTH, height=130)
    chart = alt.vconcat(
        spend,
        conversions,
        spacing=14,
        data=alt.Data(values=[]),  # the rows go in after validation, which is slow on data
        title=alt.TitleParams(
            account.label(),
            subtitle=f"{currency} · days in {account.timezone or 'UTC'}",
            anchor="start",
            fontSize=14,
        ),
    ).resolve_scale(color="independent")
    spec = chart.to_dict()
    for row in rows:
        if first_partial is not None and row["d"] == _iso(first_partial):
            row["l"] = "today, partial"  # the label's anchor
    spec["data"] = {"values": rows}
    return spec


def add_month(day: dt.date) -> dt.date:
    """The first day of the month after ``day``'s."""
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _calendar_chart(account: Account, states: dict[dt.date, tuple]) -> dict:
    """One square per day, weeks as columns (Monday on top), a month label on each month's first
    week, coloured by state, with the legend of every state."""
    import altair as alt

    rows = []
    for day, (state, detail) in sorted(states.items()):
        monday = day - dt.timedelta(days=day.weekday())
        rows.append(
            {
                "d": day.isoformat(),
                "w": monday.isoformat(),
                "y": day.strftime("%a"),
                "s": state,
                "x": detail,
            }
        )
    names = [name for name, _colour, _text in DAY_STATES]
    weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    weeks = len({r["w"] for r in rows})
    first, last = min(states), max(states)
    # Month labels on the column of each month's 1st (and on the first column unless a month
    # starts within two weeks), the year on January and on the first label.
    labels: dict[str, str] = {}
    day = first
    while day <= last:
        if day.day == 1 or (day == first and (add_month(first) - first).days >= 14):
            with_year = not labels or day.month == 1
            monday = day - dt.timedelta(days=day.weekday())
            labels[monday.isoformat()] = day.strftime("%b %Y" if with_year else "%b")
        day += dt.timedelta(days=1)
    month_label = f"{_script_json(labels)}[datum.value] || ''"
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_rect(cornerRadius=1.5, stroke="white", strokeWidth=1)
        .encode(
            x=alt.X(
                "w:O",
                title=None,
                sort="ascending",
                axis=alt.Axis(
                    labelExpr=month_label,
                    labelOverlap=False,
                    labelAngle=0,
                    labelAlign="left",
                    labelFontSize=11,
                    ticks=False,
                    domain=False,
                    orient="top",
                ),
            ),
            y=alt.Y(
                "y:O",
                sort=weekdays,
                title=None,
                axis=alt.Axis(
                    ticks=False,
                    domain=False,
                    labelExpr="indexof(['Mon', 'Wed', 'Fri'], datum.value) >= 0 ? datum.value : ''",
                ),
            ),
            color=alt.Color(
                "s:N",
                scale=alt.Scale(domain=names, range=[c for _n, c, _t in DAY_STATES]),
                legend=alt.Legend(title="Day", orient="right", symbolType="square"),
            ),
            tooltip=[
                alt.Tooltip("d:N", title="day"),
                alt.Tooltip("s:N", title="state"),
                alt.Tooltip("x:N", title="detail"),
            ],
        )
        .properties(
            width=max(weeks * 13, 120),
            height=7 * 13,
            title=alt.TitleParams(
                account.label(),
                subtitle=f"{first:%d %b %Y} – {last:%d %b %Y} · {account.timezone or 'UTC'}",
                anchor="start",
                fontSize=13,
            ),
        )
    )
    return chart.to_dict()


def _timings_chart(timings: Sequence[tuple[str, float]]) -> dict:
    import altair as alt

    rows = [{"step": name, "seconds": round(s, 1)} for name, s in timings if name != "total"]
    order = [str(r["step"]) for r in rows]
    bars = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar(color="#64748b")
        .encode(
            x=alt.X("seconds:Q", title="Duration (seconds)"),
            y=alt.Y("step:N", sort=order, title=None, axis=alt.Axis(labelLimit=360)),
            tooltip=["step:N", alt.Tooltip("seconds:Q", format=",.1f")],
        )
    )
    labels = bars.mark_text(align="left", dx=3, fontSize=11).encode(
        text=alt.Text("seconds:Q", format=",.1f")
    )
    return (bars + labels).properties(width=560, height=22 * max(len(rows), 1)).to_dict()


# --- the page ------------------------------------------------------------------------------------

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;
  max-width:1100px;padding:0 1rem;color:#111827}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #e5e7eb;
  padding-bottom:.2rem}
.meta{color:#4b5563;margin-top:0}
table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:3px 10px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
th{background:#f9fafb;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.date,td.name{white-space:nowrap}table.glance{font-size:13px}
small{color:#4b5563}
.ok{color:#15803d;font-weight:600}.bad{color:#dc2626;font-weight:600}
.chart{margin:1rem 0 1.6rem}
.note{background:#f8fafc;border-left:3px solid #94a3b8;padding:.5rem .9rem;margin:.8rem 0}
dl.states{display:grid;grid-template-columns:max-content 1fr;gap:.3rem .8rem}
dl.states dt{font-weight:600;white-space:nowrap}dl.states dd{margin:0}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.4em;border-radius:2px;
  vertical-align:-1px}
#render-error{color:#dc2626;font-weight:600}
"""


def _money(amount: Decimal | float, currency: str | None) -> str:
    return f"{amount:,.2f} {currency or ''}".rstrip()


def _script_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), default=str).replace("</", "<\\/")


def render_html(
    data: ReportData,
    *,
    now: dt.datetime,
    reconciliation: Sequence[tuple] = (),
    timings: Sequence[tuple[str, float]] = (),
    tenant_names: Mapping[str, str] | None = None,
    title: str = "Meta Ads insights: report",
    truth_label: str = "source of truth",
) -> str:
    """The page as a string. ``now`` (aware) decides each account's today (its partial day) and
    the still-attributing days; ``reconciliation`` is (tenant name, account, marts, truth)."""
    import vl_convert

    esc = html.escape
    names = dict(tenant_names or {})
    accounts = sorted(
        data.accounts, key=lambda a: (names.get(a.tenant_id, a.tenant_id), a.account_id)
    )
    by_id = {a.account_id: a for a in accounts}
    specs: dict[str, dict] = {}
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{esc(title)}</title><style>{_STYLE}</style>",
        f"<script>{vl_convert.javascript_bundle()}</script></head><body>",  # type: ignore[call-arg]
        f"<h1>{esc(title)}</h1>",
        f"<p class='meta'>Data as of {now.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC · "
        f"built {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC from the marts "
        f"<code>{esc(marts.marts_schema())}.meta_insights_levels</code> (account level, default "
        "attribution) and <code>meta_insights_coverage</code>. Amounts are in each account's own "
        "currency and never added across accounts; days are in each account's time zone.</p>",
        "<p id='render-error'></p>",
    ]

    # At a glance.
    parts.append(
        "<h2>Accounts at a glance</h2><table class='glance'><tr><th>account</th>"
        "<th>currency, time zone</th><th>days with rows</th>"
        "<th class='num'>spend, last 30 full days</th><th class='num'>conversions</th>"
        "<th class='num'>cost per conversion</th><th class='num'>today so far (partial)</th></tr>"
    )
    for account in accounts:
        days = data.days.get((account.tenant_id, account.account_id), [])
        today = account.today(now)
        recent = [d for d in days if today - dt.timedelta(days=30) <= d.date < today]
        spend = sum((d.spend for d in recent), Decimal(0))
        conversions = sum((d.conversions for d in recent), Decimal(0))
        today_row = next((d for d in days if d.date == today), None)
        span = f"{days[0].date} – {days[-1].date}" if days else "no rows"
        tenant = names.get(account.tenant_id, account.tenant_id[:8] + "…")
        parts.append(
            f"<tr><td class='name'>{esc(account.name or account.account_id)}<br><small>"
            f"{esc(account.account_id)}<br>{esc(tenant)}</small></td>"
            f"<td>{esc(account.currency or '?')}<br><small>"
            f"{esc(account.timezone or 'UTC (time zone unknown)')}</small></td>"
            f"<td class='date'>{span}</td>"
            f"<td class='num'>{_money(spend, account.currency)}</td>"
            f"<td class='num'>{conversions:,.0f}</td>"
            f"<td class='num'>"
            f"{_money(spend / conversions, account.currency) if conversions else '–'}</td>"
            f"<td class='num'>"
            f"{_money(today_row.spend, account.currency) if today_row else '–'}</td></tr>"
        )
    parts.append("</table>")

    # Trends.
    parts.append("<h2>Daily spend and conversions per account</h2>")
    parts.append(
        "<p class='note'>Shaded: the last "
        f"{ATTRIBUTION_DAYS} days, still attributing: each daily sync re-reads them and their "
        "conversions may still grow. The orange diamond and bar are today, a partial day (the "
        "account's today at the time of the data). The 7-day average leaves today out.</p>"
    )
    for i, account in enumerate(accounts):
        days = data.days.get((account.tenant_id, account.account_id), [])
        if not days:
            parts.append(f"<h3>{esc(account.label())}</h3><p>No rows.</p>")
            continue
        chart_id = f"trend-{i}"
        specs[chart_id] = _trend_chart(account, days, account.today(now))
        parts.append(
            f"<div class='chart' id='{chart_id}' data-account='{esc(account.account_id)}'></div>"
        )

    # Coverage.
    parts.append("<h2>Coverage calendar per account</h2>")
    parts.append(
        "<p>One square per day (weeks as columns, Monday on top), from the first day synced to "
        "the account's today. A day's colour is its worst state over the levels account, "
        "campaign, adset and ad; hover a square for details.</p><dl class='states'>"
    )
    for name, colour, text in DAY_STATES:
        parts.append(
            f"<dt><span class='swatch' style='background:{colour}'></span>{esc(name)}</dt>"
            f"<dd>{esc(text)}</dd>"
        )
    parts.append("</dl>")
    for i, account in enumerate(accounts):
        states = day_states(data, account, account.today(now))
        if not states:
            continue
        chart_id = f"calendar-{i}"
        specs[chart_id] = _calendar_chart(account, states)
        parts.append(f"<div class='chart' id='{chart_id}'></div>")

    if reconciliation:
        parts.append(f"<h2>Spend reconciled against the {esc(truth_label)}</h2><table>")
        parts.append(
            "<tr><th>tenant</th><th>account</th><th>currency</th><th class='num'>spend (marts)"
            f"</th><th class='num'>spend ({esc(truth_label)})</th><th>check</th></tr>"
        )
        for name, account_id, mart, truth in reconciliation:
            known = by_id.get(account_id)
            currency = known.currency if known else None
            verdict = (
                "<span class='ok'>ok: equal</span>"
                if mart == truth
                else f"<span class='bad'>MISMATCH ({_money(mart - truth, currency)})</span>"
            )
            parts.append(
                f"<tr><td>{esc(name)}</td><td>{esc(known.label() if known else account_id)}"
                f"</td><td>{esc(currency or '?')}</td><td class='num'>{mart:,.2f}</td>"
                f"<td class='num'>{truth:,.2f}</td><td>{verdict}</td></tr>"
            )
        parts.append("</table>")

    parts.append("<h2>Coverage per account and level</h2><table><tr><th>tenant</th>")
    parts.append("<th>account</th><th>level</th><th class='num'>rows</th><th>first date</th>")
    parts.append("<th>last date</th><th class='num'>synced days</th>")
    parts.append("<th class='num'>missing days</th></tr>")
    for tenant, account_id, level, rows, first, last, synced, missing in data.coverage:
        known = by_id.get(account_id)
        css = " bad" if missing else ""
        parts.append(
            f"<tr><td>{esc(names.get(tenant, tenant[:8] + '…'))}</td>"
            f"<td>{esc(known.label() if known else account_id)}</td><td>{esc(level)}</td>"
            f"<td class='num'>{rows:,}</td><td>{first or '–'}</td><td>{last or '–'}</td>"
            f"<td class='num'>{synced:,}</td><td class='num{css}'>{missing:,}</td></tr>"
        )
    parts.append("</table>")

    if timings:
        total = dict(timings).get("total")
        parts.append("<h2>Run timings</h2>")
        if total is not None:
            parts.append(f"<p>Whole run: {total:,.1f} s ({total / 60:,.1f} min).</p>")
        specs["timings"] = _timings_chart(timings)
        parts.append("<div class='chart' id='timings'></div><table>")
        parts.append("<tr><th>step</th><th class='num'>seconds</th></tr>")
        for name, seconds in timings:
            parts.append(f"<tr><td>{esc(name)}</td><td class='num'>{seconds:,.1f}</td></tr>")
        parts.append("</table>")

    parts.append(
        "<script>\n"
        f"const specs = {_script_json(specs)};\n"
        "Promise.all(Object.entries(specs).map(([id, spec]) =>\n"
        "  vegaEmbed('#' + id, spec, {renderer: 'svg', actions: false})))\n"
        "  .then(() => { document.body.dataset.rendered = 'ok'; })\n"
        "  .catch((error) => {\n"
        "    document.body.dataset.rendered = 'error';\n"
        "    document.getElementById('render-error').textContent =\n"
        "      'The charts could not be drawn: ' + error;\n"
        "  });\n"
        "</script></body></html>"
    )
    return "\n".join(parts)


def write_html(path: Path, data: ReportData, **kwargs: object) -> Path:
    """Write `render_html`'s page to ``path`` (parents created); the path."""
    text = render_html(data, **kwargs)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
