"""The sandbox world: tokens, ad accounts and their campaigns, ad sets and ads.

Built deterministically from a seed and an optional world spec (dict, YAML or JSON file).
Everything about an object that does not change day to day (names, statuses, delivery
periods, base rates) is fixed here; daily numbers come from `metrics.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from .hashing import h64, rng

DEFAULT_SEED = 1

CAMPAIGN_NAMES = (
    "Höstkampanj – Örebro",
    "夏のセール",
    "Black Friday – Always On",
    "Prospecting · Lookalike 1%",
    "Retargeting – DPA",
    "Brand Awareness Q3",
    "Sommerkampagne München",
    "Soldes d'été – Île-de-France",
    "Julrea 🎄 2025",
    "Lead Gen – Webinar",
    "Nyårsrea – Göteborg",
    "Spring Launch",
)
ADSET_AUDIENCES = (
    "Kvinnor 25–44",
    "Män 18–34",
    "Broad",
    "Lookalike 3%",
    "Website visitors 30d",
    "Interest: Löpning",
    "Advantage+ audience",
    "Köpare 180d",
)
AD_CREATIVES = (
    "Video 15s – Ölkorv",
    "Carousel — Äventyr",
    "Single image · Rea",
    "UGC testimonial",
    "Collection – Nyheter",
    "Reel 9:16 «Sommar»",
    "Static – Pris",
    "Story – Countdown",
)
OBJECTIVES = ("OUTCOME_SALES", "OUTCOME_TRAFFIC", "OUTCOME_AWARENESS", "OUTCOME_LEADS")
OPTIMIZATION_GOALS = {
    "OUTCOME_SALES": "OFFSITE_CONVERSIONS",
    "OUTCOME_TRAFFIC": "LINK_CLICKS",
    "OUTCOME_AWARENESS": "REACH",
    "OUTCOME_LEADS": "LEAD_GENERATION",
}
COUNTRIES_BY_CURRENCY = {
    "SEK": ("SE", "NO", "DK", "FI"),
    "USD": ("US", "CA", "MX"),
    "EUR": ("DE", "FR", "NL", "ES", "IT"),
    "AUD": ("AU", "NZ"),
    "GBP": ("GB", "IE"),
    "NOK": ("NO", "SE"),
    "DKK": ("DK", "SE", "DE"),
}
# Typical CPM in the account currency's cents (minor units).
CPM_CENTS_BY_CURRENCY = {"SEK": 6500, "NOK": 7000, "DKK": 5000, "USD": 900, "AUD": 1200}


@dataclass(frozen=True)
class Limits:
    """Tunable limits of the sandbox (world file key `limits:`)."""

    job_max_rows: int = 500_000
    sync_max_rows: int = 50_000
    job_base_seconds: float = 3.0
    job_row_ms: float = 2.0
    throttle_capacity: float = 400.0
    throttle_leak_per_second: float = 10.0
    throttle_job_weight: float = 10.0
    app_throttle_capacity: float = 2000.0
    app_throttle_leak_per_second: float = 50.0
    account_job_slots: int = 8
    app_job_slots: int = 100
    page_max_limit: int = 5000

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None) -> Limits:
        spec = dict(spec or {})
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown limits: {sorted(unknown)}")
        return cls(**spec)


@dataclass
class Campaign:
    id: str
    account_id: str
    name: str
    status: str
    effective_status: str
    objective: str
    buying_type: str
    created_time: datetime
    updated_time: datetime
    start_time: datetime
    stop_time: datetime | None
    daily_budget_cents: int


@dataclass
class AdSet:
    id: str
    account_id: str
    campaign_id: str
    name: str
    status: str
    effective_status: str
    optimization_goal: str
    created_time: datetime
    updated_time: datetime
    start_time: datetime
    end_time: datetime | None
    daily_budget_cents: int


@dataclass
class Ad:
    id: str
    account_id: str
    campaign_id: str
    adset_id: str
    name: str
    status: str
    effective_status: str
    created_time: datetime
    updated_time: datetime
    creative_id: str
    # Delivery: first and last local day with possible delivery, and paused periods.
    first_day: date
    last_day: date | None
    pauses: tuple[tuple[date, date], ...]
    # Base rates used by metrics.py.
    base_impressions: float
    zero_rate: float
    ctr: float
    link_ratio: float
    cpm_cents: float
    click_cvr: float
    view_cvr: float
    lead_share: float
    aov_cents: int
    season_phase: float


@dataclass
class Account:
    id: str  # act_<digits>
    account_id: str  # digits
    name: str
    currency: str
    timezone_name: str
    history_days: int
    capacity: int
    created_time: datetime
    countries: tuple[str, ...]
    campaigns: list[Campaign] = field(default_factory=list)
    adsets: list[AdSet] = field(default_factory=list)
    ads: list[Ad] = field(default_factory=list)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone_name)

    def today(self, now: datetime) -> date:
        return now.astimezone(self.tz).date()


@dataclass
class Token:
    token: str
    user_id: str
    user_name: str
    accounts: tuple[str, ...]


@dataclass
class World:
    seed: int
    now: datetime | None
    tokens: dict[str, Token]
    accounts: dict[str, Account]
    limits: Limits
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    adsets: dict[str, AdSet] = field(default_factory=dict)
    ads: dict[str, Ad] = field(default_factory=dict)

    def index(self) -> None:
        for acct in self.accounts.values():
            self.campaigns.update({c.id: c for c in acct.campaigns})
            self.adsets.update({s.id: s for s in acct.adsets})
            self.ads.update({a.id: a for a in acct.ads})

    def describe(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "tokens": [
                {"token": t.token, "accounts": list(t.accounts)} for t in self.tokens.values()
            ],
            "accounts": [
                {
                    "id": a.id,
                    "name": a.name,
                    "currency": a.currency,
                    "timezone_name": a.timezone_name,
                    "history_days": a.history_days,
                    "capacity": a.capacity,
                    "campaigns": len(a.campaigns),
                    "adsets": len(a.adsets),
                    "ads": len(a.ads),
                }
                for a in self.accounts.values()
            ],
            "limits": self.limits.__dict__,
        }


def parse_instant(value: str | datetime) -> datetime:
    """ISO-8601 instant (a trailing Z is accepted; naive values are UTC)."""
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def default_now() -> datetime:
    """Real current time truncated to the hour (UTC)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def default_spec(seed: int) -> dict[str, Any]:
    """The small world used when no world is given: 2 tokens, 3 accounts."""
    r = rng(seed, "default-world")
    ids = [f"act_{10**14 + r.randrange(10**14)}" for _ in range(3)]
    return {
        "seed": seed,
        "tokens": [
            {"token": "sandbox-token-a", "accounts": [ids[0], ids[1]]},
            {"token": "sandbox-token-b", "accounts": [ids[2]]},
        ],
        "accounts": [
            {
                "id": ids[0],
                "name": "Nordic Shoes AB",
                "currency": "SEK",
                "timezone_name": "Europe/Stockholm",
                "history_days": 450,
                "campaigns": 4,
                "adsets_per_campaign": 2,
                "ads_per_adset": 3,
            },
            {
                "id": ids[1],
                "name": "Sunrise Outdoor Inc.",
                "currency": "USD",
                "timezone_name": "America/Los_Angeles",
                "history_days": 450,
                "campaigns": 3,
                "adsets_per_campaign": 3,
                "ads_per_adset": 3,
            },
            {
                "id": ids[2],
                "name": "Bondi Surf Co. – 夏",
                "currency": "AUD",
                "timezone_name": "Australia/Sydney",
                "history_days": 450,
                "campaigns": 5,
                "adsets_per_campaign": 2,
                "ads_per_adset": 2,
            },
        ],
    }


def load_spec(world: None | dict[str, Any] | str | Path) -> dict[str, Any] | None:
    """Read a world spec from a dict, a YAML/JSON path, or None."""
    if world is None or isinstance(world, dict):
        return world
    text = Path(world).read_text(encoding="utf-8")
    if str(world).endswith(".json"):
        return json.loads(text)
    return yaml.safe_load(text)


def build_world(spec: dict[str, Any] | None, seed: int | None = None) -> World:
    """Build the world from a spec (or the default world for the seed)."""
    seed = int(spec.get("seed", seed if seed is not None else DEFAULT_SEED)) if spec else seed
    seed = DEFAULT_SEED if seed is None else seed
    if spec is None or not spec.get("accounts"):
        base = default_spec(seed)
        spec = {**base, **(spec or {}), "accounts": base["accounts"]}
        spec.setdefault("tokens", base["tokens"])
    now = parse_instant(spec["now"]) if spec.get("now") else None
    build_now = now or default_now()
    accounts: dict[str, Account] = {}
    for i, aspec in enumerate(spec["accounts"]):
        acct = _build_account(seed, i, aspec, build_now)
        if acct.id in accounts:
            raise ValueError(f"duplicate account {acct.id}")
        accounts[acct.id] = acct
    tokens: dict[str, Token] = {}
    token_specs = spec.get("tokens") or [{"token": "sandbox-token", "accounts": list(accounts)}]
    for i, tspec in enumerate(token_specs):
        accts = tuple(act_id(a) for a in tspec.get("accounts", []))
        for a in accts:
            if a not in accounts:
                raise ValueError(f"token {tspec['token']} lists unknown account {a}")
        tokens[str(tspec["token"])] = Token(
            token=str(tspec["token"]),
            user_id=str(10**15 + h64(seed, "user", tspec["token"]) % 10**15),
            user_name=str(tspec.get("user_name", f"Sandbox User {i + 1}")),
            accounts=accts,
        )
    world = World(
        seed=seed,
        now=now,
        tokens=tokens,
        accounts=accounts,
        limits=Limits.from_spec(spec.get("limits")),
    )
    world.index()
    return world


def act_id(value: object) -> str:
    """An ad account id in its ``act_<digits>`` form (``123`` or ``act_123`` given)."""
    s = str(value)
    return s if s.startswith("act_") else f"act_{s}"


def _object_id(seed: int, kind: str, account: str, *idx: int) -> str:
    prefix = {"campaign": "1202", "adset": "1203", "ad": "1204", "creative": "1205"}[kind]
    return prefix + f"{h64(seed, kind, account, *idx) % 10**14:014d}"


def _local_dt(day: date, tz: ZoneInfo, hour: int) -> datetime:
    return datetime.combine(day, time(hour % 24, 0), tzinfo=tz)


def _build_account(seed: int, index: int, spec: dict[str, Any], now: datetime) -> Account:
    act = act_id(spec["id"])
    r = rng(seed, "account", act)
    currency = str(spec.get("currency", "USD"))
    tzname = str(spec.get("timezone_name", "UTC"))
    tz = ZoneInfo(tzname)
    history = int(spec.get("history_days", 450))
    today = now.astimezone(tz).date()
    hist_start = today - timedelta(days=history)
    acct = Account(
        id=act,
        account_id=act[4:],
        name=str(spec.get("name", f"Sandbox Account {index + 1}")),
        currency=currency,
        timezone_name=tzname,
        history_days=history,
        capacity=int(spec.get("capacity", 4)),
        created_time=_local_dt(hist_start - timedelta(days=r.randrange(30, 400)), tz, 9),
        countries=tuple(spec.get("countries") or COUNTRIES_BY_CURRENCY.get(currency, ("US", "GB"))),
    )
    n_campaigns = int(spec.get("campaigns", 3))
    n_adsets = int(spec.get("adsets_per_campaign", 2))
    n_ads = int(spec.get("ads_per_adset", 3))
    base_cpm = CPM_CENTS_BY_CURRENCY.get(currency, 1000)
    scale = float(spec.get("volume", 1.0))
    for c in range(n_campaigns):
        cr = rng(seed, "campaign", act, c)
        cid = _object_id(seed, "campaign", act, c)
        # Most campaigns run through the whole history; some start later or have ended.
        start = hist_start + timedelta(days=cr.randrange(0, max(1, history // 3)) if c else 0)
        status = cr.choices(("ACTIVE", "PAUSED", "ARCHIVED"), weights=(70, 20, 10))[0]
        if c == 0:
            status = "ACTIVE"
        stop_day: date | None = None
        if status != "ACTIVE":
            span = max(1, (today - start).days)
            stop_day = start + timedelta(days=cr.randrange(span // 2, span + 1))
            stop_day = min(stop_day, today - timedelta(days=1))
        objective = OBJECTIVES[cr.randrange(len(OBJECTIVES))] if c else "OUTCOME_SALES"
        created = _local_dt(start - timedelta(days=cr.randrange(1, 10)), tz, cr.randrange(8, 18))
        updated_day = stop_day or min(today, start + timedelta(days=cr.randrange(0, 200)))
        campaign = Campaign(
            id=cid,
            account_id=acct.account_id,
            name=f"{CAMPAIGN_NAMES[(c + index * 5) % len(CAMPAIGN_NAMES)]}"
            + (f" #{c // len(CAMPAIGN_NAMES) + 1}" if c >= len(CAMPAIGN_NAMES) else ""),
            status=status,
            effective_status=status,
            objective=objective,
            buying_type="AUCTION",
            created_time=created,
            updated_time=max(created, _local_dt(updated_day, tz, cr.randrange(8, 20))),
            start_time=_local_dt(start, tz, 0),
            stop_time=_local_dt(stop_day, tz, 23) if stop_day else None,
            daily_budget_cents=cr.randrange(20, 400) * base_cpm // 10,
        )
        acct.campaigns.append(campaign)
        for s in range(n_adsets):
            sr = rng(seed, "adset", act, c, s)
            sid = _object_id(seed, "adset", act, c, s)
            s_start = start + timedelta(days=sr.randrange(0, 5))
            s_status = "ACTIVE" if sr.random() < 0.85 else "PAUSED"
            s_stop = stop_day
            if status == "ACTIVE" and s_status == "PAUSED":
                span = max(1, (today - s_start).days)
                s_stop = s_start + timedelta(days=sr.randrange(span // 2, span + 1))
                s_stop = min(s_stop, today - timedelta(days=1))
            s_eff = s_status if status == "ACTIVE" else f"CAMPAIGN_{status}"
            if status == "ARCHIVED":
                s_status = s_eff = "ARCHIVED"
            s_created = created + timedelta(hours=sr.randrange(1, 48))
            adset = AdSet(
                id=sid,
                account_id=acct.account_id,
                campaign_id=cid,
                name=f"{ADSET_AUDIENCES[(s + c) % len(ADSET_AUDIENCES)]} · {acct.countries[0]}"
                + (f" ({s + 1})" if s >= len(ADSET_AUDIENCES) else ""),
                status=s_status,
                effective_status=s_eff,
                optimization_goal=OPTIMIZATION_GOALS[objective],
                created_time=s_created,
                updated_time=max(s_created, campaign.updated_time),
                start_time=_local_dt(s_start, tz, 0),
                end_time=_local_dt(s_stop, tz, 23) if s_stop else None,
                daily_budget_cents=campaign.daily_budget_cents // max(1, n_adsets),
            )
            acct.adsets.append(adset)
            for a in range(n_ads):
                ar = rng(seed, "ad", act, c, s, a)
                ad_start = s_start + timedelta(days=ar.randrange(0, 3) if a else 0)
                a_status = "ACTIVE" if ar.random() < 0.85 else "PAUSED"
                a_stop = s_stop
                if s_eff == "ACTIVE" and a_status == "PAUSED":
                    span = max(1, (today - ad_start).days)
                    a_stop = ad_start + timedelta(days=ar.randrange(span // 2, span + 1))
                    a_stop = min(a_stop, today - timedelta(days=1))
                if s_eff == "ACTIVE":
                    a_eff = a_status
                elif s_eff.startswith("CAMPAIGN_") or s_eff == "ARCHIVED":
                    a_eff = s_eff
                else:
                    a_eff = "ADSET_PAUSED"
                if status == "ARCHIVED":
                    a_status = a_eff = "ARCHIVED"
                pauses = []
                for _ in range(ar.randrange(0, 3)):
                    p_start = ad_start + timedelta(days=ar.randrange(0, max(1, history)))
                    pauses.append((p_start, p_start + timedelta(days=ar.randrange(1, 8))))
                a_created = s_created + timedelta(hours=ar.randrange(1, 24))
                lead_share = 0.8 if objective == "OUTCOME_LEADS" else 0.02
                cvr_scale = 0.3 if objective in ("OUTCOME_AWARENESS", "OUTCOME_LEADS") else 1.0
                ad = Ad(
                    id=_object_id(seed, "ad", act, c, s, a),
                    account_id=acct.account_id,
                    campaign_id=cid,
                    adset_id=sid,
                    name=f"{AD_CREATIVES[(a + s + c) % len(AD_CREATIVES)]} v{a + 1}",
                    status=a_status,
                    effective_status=a_eff,
                    created_time=a_created,
                    updated_time=max(a_created, adset.updated_time),
                    creative_id=_object_id(seed, "creative", act, c, s, a),
                    first_day=ad_start,
                    last_day=a_stop,
                    pauses=tuple(sorted(pauses)),
                    base_impressions=scale * ar.lognormvariate(7.6, 0.7),
                    zero_rate=0.02 + 0.03 * ar.random(),
                    ctr=0.006 + 0.02 * ar.random(),
                    link_ratio=0.55 + 0.35 * ar.random(),
                    cpm_cents=base_cpm * (0.6 + 0.9 * ar.random()),
                    click_cvr=cvr_scale * (0.01 + 0.04 * ar.random()),
                    view_cvr=cvr_scale * (0.00005 + 0.0002 * ar.random()),
                    lead_share=lead_share,
                    aov_cents=int(base_cpm * (2 + 8 * ar.random())),
                    season_phase=ar.random(),
                )
                acct.ads.append(ad)
    return acct
