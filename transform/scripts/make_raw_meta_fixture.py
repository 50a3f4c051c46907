"""Write the Singer fixtures the dbt project is tested on (deterministic; re-run to regenerate).

    python transform/scripts/make_raw_meta_fixture.py

Writes, in the shape of docs/CONTRACTS.md (every stream's key starts with tenant_id):
  tests/fixtures/raw_meta.singer.jsonl            first load: 2 tenants + 1 tenant-less account
      (the nil UUID), 5 accounts, reports ad/adset/campaign (+ campaign_age_gender with
      breakdowns), 2026-11-01..07, a synced day without delivery (act_1001, 2026-11-04), a
      re-extracted day (act_1001, 2026-11-06: every key sent twice, the second version wins),
      non-ASCII names, and one ad account listed under both tenants (act_4001: the agency, tenant
      A, synced it 11-01..07; the client, tenant B, 11-03..07), with the same campaign/adset/ad
      ids and different numbers in each copy.
  tests/fixtures/raw_meta_increment.singer.jsonl  second load: a backfill of old dates (act_1002,
      2026-10-15..16), an updated recent day (act_1001, 2026-11-07), a new day (act_2001,
      2026-11-08) and an updated recent day of the shared account for tenant B only (act_4001,
      2026-11-07: tenant A's copy must not change).
Ad-level numbers are drawn at random; adset, campaign and breakdown rows are their sums, so
spend/impressions/clicks reconcile across levels to the cent.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures"

TENANT_A = "3f6c1e2a-8b1d-4c5e-9a7f-1b2c3d4e5f60"
TENANT_B = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
# What the tap stamps on rows loaded without a tenant (tenant_id is part of every key: never null).
TENANT_NONE = "00000000-0000-0000-0000-000000000000"
WINDOWS = ["1d_view", "7d_click", "28d_click"]
EXTRACTED_1 = "2026-11-08T03:00:00Z"
EXTRACTED_2 = "2026-11-09T03:00:00Z"

ACCOUNTS = [
    # tenant, account_id, name, currency, timezone, campaign names
    (
        TENANT_A,
        "act_1001",
        "Kafferosteriet Åkerö AB",
        "SEK",
        "Europe/Stockholm",
        ["Höstkampanj – Kaffe ☕", "Julklappar Ölands Rosteri"],
    ),
    (
        TENANT_A,
        "act_1002",
        "Bäckerei Müller GmbH",
        "EUR",
        "Europe/Berlin",
        ["Brötchen-Aktion Größe L", "Weihnachtsstollen"],
    ),
    (
        TENANT_B,
        "act_2001",
        "Café Zoë & Søn",
        "USD",
        "America/New_York",
        ["Crème brûlée week", "Smørrebrød lunch"],
    ),
    (
        TENANT_NONE,
        "act_3001",
        "東京ラーメン株式会社",
        "JPY",
        "Asia/Tokyo",
        ["冬の味噌ラーメン", "Gyōza deal"],
    ),
    # One ad account listed under two tenants (an agency and its client): each tenant gets its own
    # copy, drawn separately, so the numbers differ and a test can tell the copies apart.
    (
        TENANT_A,
        "act_4001",
        "Fjällstugan Outdoor Oy",
        "EUR",
        "Europe/Helsinki",
        ["Talvivaellus ❄", "Kesämökki sale"],
    ),
    (
        TENANT_B,
        "act_4001",
        "Fjällstugan Outdoor Oy",
        "EUR",
        "Europe/Helsinki",
        ["Talvivaellus ❄", "Kesämökki sale"],
    ),
]
SHARED_ACCOUNT = "act_4001"
# Days of the first load per (tenant, account) when not all 7: the client synced from 11-03.
FIRST_DAY = {(TENANT_B, SHARED_ACCOUNT): date(2026, 11, 3)}

INSIGHT_PROPS = {
    "tenant_id": {"type": "string"},
    "account_id": {"type": "string"},
    "date": {"type": "string", "format": "date"},
    "level": {"type": "string"},
    "report_name": {"type": "string"},
    "action_report_time": {"type": "string"},
    "attribution_windows": {"type": ["array", "null"], "items": {"type": "string"}},
    "breakdowns": {"type": ["object", "null"]},
    **{
        f"{o}_{f}": {"type": ["string", "null"]}
        for o in ("campaign", "adset", "ad")
        for f in ("id", "name")
    },
    "account_name": {"type": ["string", "null"]},
    "account_currency": {"type": ["string", "null"]},
    **{
        m: {"type": ["integer", "null"]}
        for m in ("impressions", "reach", "clicks", "inline_link_clicks")
    },
    **{m: {"type": ["number", "null"]} for m in ("spend", "frequency", "ctr", "cpc", "cpm")},
    "actions": {"type": ["array", "null"], "items": {"type": "object"}},
    "action_values": {"type": ["array", "null"], "items": {"type": "object"}},
}
LEVEL_KEY = {"ad": "ad_id", "adset": "adset_id", "campaign": "campaign_id"}
BREAKDOWN_BUCKETS = [{"age": "18-24", "gender": "female"}, {"age": "25-34", "gender": "male"}]


def dims(account_id, campaigns):
    """Campaign -> adsets -> ads, two of each, ids derived from the account."""
    digits = account_id.removeprefix("act_")
    out = []
    for c, cname in enumerate(campaigns, 1):
        cid = f"{digits}{c:02d}"
        adsets = []
        for s in (1, 2):
            sid = f"{cid}{s:02d}"
            ads = [(f"{sid}{a:02d}", f"{cname} · Annons {s}.{a} «Ålänning»") for a in (1, 2)]
            adsets.append((sid, f"{cname} / Målgrupp {s}", ads))
        out.append((cid, cname, adsets))
    return out


def actions_for(rng, link_clicks, scale=1.0):
    purchases = rng.randint(0, 4)
    leads = rng.randint(0, 3)
    view = rng.randint(0, purchases)
    acts, vals = [], []
    for action_type, value, via_view in (
        ("link_click", link_clicks, 0),
        ("purchase", purchases, view),
        ("lead", leads, 0),
    ):
        if value == 0:
            continue
        click = value - via_view
        acts.append(
            {
                "action_type": action_type,
                "value": value,
                "1d_view": via_view,
                "7d_click": click,
                "28d_click": click + (1 if action_type == "purchase" else 0),
            }
        )
    if purchases:
        amount = round(purchases * rng.uniform(150, 450) * scale, 2)
        view_amount = round(amount * view / purchases, 2)
        vals.append(
            {
                "action_type": "purchase",
                "value": amount,
                "1d_view": view_amount,
                "7d_click": round(amount - view_amount, 2),
                "28d_click": round(amount - view_amount + 99.5 * scale, 2),
            }
        )
    return acts, vals


def add_actions(total, items):
    for item in items:
        found = next((t for t in total if t["action_type"] == item["action_type"]), None)
        if found is None:
            total.append(dict(item))
        else:
            for k, v in item.items():
                if k != "action_type":
                    found[k] = round(found[k] + v, 2)
    return total


def day_rows(rng, tenant, account, currency, tree, day, skip_campaigns=(), bump=0.0):
    """Ad rows drawn at random, plus their adset, campaign and age/gender breakdown sums."""
    account_id, account_name = account
    scale = 0.1 if currency == "JPY" else 1.0
    rows = {"ad": [], "adset": [], "campaign": [], "campaign_age_gender": []}
    base = {
        "tenant_id": tenant,
        "account_id": account_id,
        "date": day.isoformat(),
        "action_report_time": "impression",
        "attribution_windows": WINDOWS,
        "account_name": account_name,
        "account_currency": currency,
    }
    for c, (cid, cname, adsets) in enumerate(tree):
        if c in skip_campaigns:
            continue
        camp = None
        for sid, sname, ads in adsets:
            adset = None
            for aid, aname in ads:
                impressions = rng.randint(200, 5000)
                clicks = max(1, int(impressions * rng.uniform(0.005, 0.03)))
                link = rng.randint(0, clicks)
                spend = round(
                    impressions * rng.uniform(20, 90) / 1000 * (10 if currency == "JPY" else 1)
                    + bump,
                    2,
                )
                acts, vals = actions_for(rng, link, scale)
                row = {
                    **base,
                    "level": "ad",
                    "report_name": "ad",
                    "breakdowns": {},
                    "campaign_id": cid,
                    "campaign_name": cname,
                    "adset_id": sid,
                    "adset_name": sname,
                    "ad_id": aid,
                    "ad_name": aname,
                    "impressions": impressions,
                    "reach": int(impressions / 1.3),
                    "clicks": clicks,
                    "inline_link_clicks": link,
                    "spend": spend,
                    "actions": acts,
                    "action_values": vals,
                }
                rows["ad"].append(row)
                adset = merge(adset, row, "adset", {"ad_id": None, "ad_name": None})
            rows["adset"].append(adset)
            camp = merge(camp, adset, "campaign", {"adset_id": None, "adset_name": None})
        rows["campaign"].append(camp)
        first = {
            "impressions": camp["impressions"] // 3,
            "clicks": camp["clicks"] // 3,
            "inline_link_clicks": camp["inline_link_clicks"] // 3,
            "spend": round(camp["spend"] / 3, 2),
        }
        for i, bucket in enumerate(BREAKDOWN_BUCKETS):
            part = first if i == 0 else {k: round(camp[k] - first[k], 2) for k in first}
            rows["campaign_age_gender"].append(
                {
                    **camp,
                    **part,
                    "report_name": "campaign_age_gender",
                    "breakdowns": bucket,
                    **bucket,
                    "reach": None,
                    "actions": [],
                    "action_values": [],
                }
            )
    for level_rows in rows.values():
        for r in level_rows:
            finish(r)
    return rows


def merge(total, row, level, blank):
    if total is None:
        total = {
            **row,
            **blank,
            "level": level,
            "report_name": level,
            "actions": [],
            "action_values": [],
            "reach": 0,
        }
        for k in ("impressions", "clicks", "inline_link_clicks", "spend"):
            total[k] = 0
    for k in ("impressions", "clicks", "inline_link_clicks"):
        total[k] += row[k]
    total["spend"] = round(total["spend"] + row["spend"], 2)
    total["reach"] = int(total["reach"] + row["reach"] * 0.9)
    add_actions(total["actions"], row["actions"])
    add_actions(total["action_values"], row["action_values"])
    return total


def finish(r):
    imp, clicks, spend, reach = r["impressions"], r["clicks"], r["spend"], r.get("reach")
    r["ctr"] = round(100 * clicks / imp, 6) if imp else None
    r["cpc"] = round(spend / clicks, 6) if clicks else None
    r["cpm"] = round(1000 * spend / imp, 6) if imp else None
    r["frequency"] = round(imp / reach, 6) if reach else None


def schema_messages(with_breakdowns):
    msgs = []
    for report, key in LEVEL_KEY.items():
        msgs.append(
            schema(f"insights_{report}", INSIGHT_PROPS, ["tenant_id", "account_id", "date", key])
        )
    if with_breakdowns:
        props = {
            **INSIGHT_PROPS,
            "age": {"type": ["string", "null"]},
            "gender": {"type": ["string", "null"]},
        }
        msgs.append(
            schema(
                "insights_campaign_age_gender",
                props,
                ["tenant_id", "account_id", "date", "campaign_id", "age", "gender"],
            )
        )
    msgs.append(
        schema(
            "insights_windows",
            {
                "tenant_id": {"type": "string"},
                "account_id": {"type": "string"},
                "report_name": {"type": "string"},
                "level": {"type": "string"},
                "date_start": {"type": "string", "format": "date"},
                "date_stop": {"type": "string", "format": "date"},
                "rows": {"type": ["integer", "null"]},
                "completed_at": {"type": ["string", "null"], "format": "date-time"},
            },
            ["tenant_id", "account_id", "report_name", "date_start", "date_stop"],
        )
    )
    common = {
        "tenant_id": {"type": "string"},
        "account_id": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "status": {"type": ["string", "null"]},
        "effective_status": {"type": ["string", "null"]},
        "created_time": {"type": ["string", "null"], "format": "date-time"},
        "updated_time": {"type": ["string", "null"], "format": "date-time"},
    }
    msgs.append(
        schema(
            "accounts",
            {
                **common,
                "id": {"type": ["string", "null"]},
                "currency": {"type": ["string", "null"]},
                "timezone_name": {"type": ["string", "null"]},
            },
            ["tenant_id", "account_id"],
        )
    )
    parents = {"campaigns": [], "adsets": ["campaign_id"], "ads": ["campaign_id", "adset_id"]}
    for stream, cols in parents.items():
        props = {
            **common,
            "id": {"type": "string"},
            **{c: {"type": ["string", "null"]} for c in cols},
        }
        msgs.append(schema(stream, props, ["tenant_id", "id"]))
    return msgs


def schema(stream, props, key):
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": props},
        "key_properties": key,
    }


def record(stream, rec, extracted):
    return {"type": "RECORD", "stream": stream, "record": rec, "time_extracted": extracted}


def window(tenant, account_id, report, level, start, stop, n, extracted):
    return record(
        "insights_windows",
        {
            "tenant_id": tenant,
            "account_id": account_id,
            "report_name": report,
            "level": level,
            "date_start": start.isoformat(),
            "date_stop": stop.isoformat(),
            "rows": n,
            "completed_at": extracted,
        },
        extracted,
    )


def emit_days(msgs, rng, tenant, account_id, name, currency, tree, days, extracted, **kw):
    counts = {}
    for day in days:
        skip = kw.get("skip", {}).get(day, ())
        if skip == "all":
            continue
        rows = day_rows(
            rng, tenant, (account_id, name), currency, tree, day, skip, kw.get("bump", 0)
        )
        for report, level_rows in rows.items():
            if report == "campaign_age_gender" and account_id != "act_1001":
                continue
            counts[report] = counts.get(report, 0) + len(level_rows)
            msgs.extend(record(f"insights_{report}", r, extracted) for r in level_rows)
    return counts


def first_load():
    rng = random.Random(20261108)
    msgs = schema_messages(with_breakdowns=True)
    all_days = [date(2026, 11, 1) + timedelta(d) for d in range(7)]
    for tenant, account_id, name, currency, tz, campaigns in ACCOUNTS:
        first_day = FIRST_DAY.get((tenant, account_id), all_days[0])
        days = [d for d in all_days if d >= first_day]
        tree = dims(account_id, campaigns)
        msgs.append(
            record(
                "accounts",
                {
                    "tenant_id": tenant,
                    "account_id": account_id,
                    "id": account_id,
                    "name": name,
                    "currency": currency,
                    "timezone_name": tz,
                    "status": "ACTIVE",
                    "effective_status": "ACTIVE",
                },
                EXTRACTED_1,
            )
        )
        for cid, cname, adsets in tree:
            msgs.append(record("campaigns", dim(tenant, account_id, cid, cname, {}), EXTRACTED_1))
            for sid, sname, ads in adsets:
                msgs.append(
                    record(
                        "adsets",
                        dim(tenant, account_id, sid, sname, {"campaign_id": cid}),
                        EXTRACTED_1,
                    )
                )
                for aid, aname in ads:
                    msgs.append(
                        record(
                            "ads",
                            dim(
                                tenant,
                                account_id,
                                aid,
                                aname,
                                {"campaign_id": cid, "adset_id": sid},
                            ),
                            EXTRACTED_1,
                        )
                    )
        skip = {}
        if account_id == "act_1001":
            skip = {date(2026, 11, 4): "all"}  # synced, no delivery
        if account_id == "act_2001":
            skip = {d: (1,) for d in days[4:]}  # second campaign paused
        counts = emit_days(
            msgs, rng, tenant, account_id, name, currency, tree, days, EXTRACTED_1, skip=skip
        )
        if account_id == "act_1001":  # re-extraction of 2026-11-06: same keys, later values win
            emit_days(
                msgs,
                rng,
                tenant,
                account_id,
                name,
                currency,
                tree,
                [date(2026, 11, 6)],
                EXTRACTED_2,
                bump=1.11,
            )
        for report in ("ad", "adset", "campaign", "campaign_age_gender"):
            if report == "campaign_age_gender" and account_id != "act_1001":
                continue
            level = "campaign" if report.startswith("campaign") else report
            msgs.append(
                window(
                    tenant,
                    account_id,
                    report,
                    level,
                    days[0],
                    days[-1],
                    counts.get(report, 0),
                    EXTRACTED_1,
                )
            )
    return msgs


def dim(tenant, account_id, oid, name, parents):
    return {
        "tenant_id": tenant,
        "account_id": account_id,
        "id": oid,
        "name": name,
        "status": "ACTIVE",
        "effective_status": "ACTIVE",
        "created_time": "2026-10-01T08:00:00Z",
        "updated_time": "2026-10-02T08:00:00Z",
        **parents,
    }


def second_load():
    rng = random.Random(20261109)
    msgs = schema_messages(with_breakdowns=True)
    by_key = {(a[0], a[1]): a for a in ACCOUNTS}
    plan = [
        (TENANT_A, "act_1002", [date(2026, 10, 15), date(2026, 10, 16)], 0.0),  # old dates
        (TENANT_A, "act_1001", [date(2026, 11, 7)], 2.22),  # late attribution: day re-extracted
        (TENANT_B, "act_2001", [date(2026, 11, 8)], 0.0),  # the next day
        (TENANT_B, SHARED_ACCOUNT, [date(2026, 11, 7)], 3.33),  # the client's copy only
    ]
    for tenant, account_id, days, bump in plan:
        _, _, name, currency, _, campaigns = by_key[(tenant, account_id)]
        tree = dims(account_id, campaigns)
        counts = emit_days(
            msgs, rng, tenant, account_id, name, currency, tree, days, EXTRACTED_2, bump=bump
        )
        for report in counts:
            level = "campaign" if report.startswith("campaign") else report
            msgs.append(
                window(
                    tenant,
                    account_id,
                    report,
                    level,
                    days[0],
                    days[-1],
                    counts[report],
                    EXTRACTED_2,
                )
            )
    return msgs


def write(path, msgs):
    with path.open("w", encoding="utf-8") as f:
        for m in msgs:
            f.write(json.dumps(m, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(ROOT)} ({len(msgs)} messages)")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    write(OUT / "raw_meta.singer.jsonl", first_load())
    write(OUT / "raw_meta_increment.singer.jsonl", second_load())
