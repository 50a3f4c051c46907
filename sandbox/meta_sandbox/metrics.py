"""Daily numbers per ad, late attribution and breakdown splits.

An ad-day is described by a flat vector of integers (layout below). Vectors of parents and
of longer periods are sums of ad-day vectors, so additive metrics reconcile exactly; only
reach is recomputed (non-additive, see insights.py).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from .hashing import uniforms16_bytes, unit
from .world import Account, Ad

# Vector layout.
IMP, REACH, CLICKS, ILC, SPEND, LPV = 0, 1, 2, 3, 4, 5
CONVERSION_TYPES = ("view_content", "add_to_cart", "initiate_checkout", "lead", "purchase")
WINDOWS = ("1d_click", "7d_click", "28d_click", "1d_view", "7d_view", "28d_view")
CONV0 = 6  # CONV0 + 6 * k + w: count of conversion type k in window w
PVAL0 = CONV0 + 6 * len(CONVERSION_TYPES)  # PVAL0 + w: purchase value (cents) in window w
VECTOR_LEN = PVAL0 + 6
ACTION_TYPES = ("link_click", "landing_page_view", *CONVERSION_TYPES)
VALUE_ACTION_TYPES = ("purchase",)
WINDOW_DAYS = {"1d": 1, "7d": 7, "28d": 28}
ATTRIBUTION_DAYS = 28  # a day's conversions keep growing until it is this many days old

# Funnel ratio of each conversion type relative to purchases (lead uses the ad's lead share).
FUNNEL = {"view_content": 6.0, "add_to_cart": 2.5, "initiate_checkout": 1.6, "purchase": 1.0}
WEEKDAY = (1.0, 1.02, 1.0, 0.98, 0.95, 1.08, 1.12)


def _lag_cdf(share_day1: float, share_day7: float) -> tuple[float, ...]:
    """Fraction of 28-day conversions that happened within d days, d = 0..28 (index = d)."""
    out = [0.0]
    for d in range(1, ATTRIBUTION_DAYS + 1):
        if d <= 1:
            v = share_day1
        elif d <= 7:
            v = share_day1 + (share_day7 - share_day1) * math.log(d) / math.log(7)
        else:
            v = share_day7 + (1 - share_day7) * math.log(d / 7) / math.log(4)
        out.append(min(1.0, v))
    out[ATTRIBUTION_DAYS] = 1.0
    return tuple(out)


CLICK_CDF = _lag_cdf(0.6, 0.9)
VIEW_CDF = _lag_cdf(0.7, 0.92)

# Breakdown dimensions and their values (country depends on the account).
BREAKDOWN_VALUES: dict[str, tuple[str, ...]] = {
    "age": ("18-24", "25-34", "35-44", "45-54", "55-64", "65+"),
    "gender": ("female", "male", "unknown"),
    "publisher_platform": ("facebook", "instagram", "audience_network", "messenger"),
    "device_platform": ("mobile_app", "mobile_web", "desktop"),
}
SUPPORTED_BREAKDOWNS = ("age", "gender", "country", "publisher_platform", "device_platform")


def breakdown_values(account: Account, dim: str) -> tuple[str, ...]:
    return account.countries if dim == "country" else BREAKDOWN_VALUES[dim]


def delivers(ad: Ad, day: date) -> bool:
    if day < ad.first_day or (ad.last_day is not None and day > ad.last_day):
        return False
    for a, b in ad.pauses:  # noqa: SIM110 (a plain loop is faster on this hot path)
        if a <= day <= b:
            return False
    return True


def _day_factor(day: date) -> tuple[float, float]:
    """(weekday x year-end factor, day-of-year angle) shared by every ad on that day."""
    doy = day.toordinal() - date(day.year, 1, 1).toordinal() + 1
    factor = WEEKDAY[day.weekday()] * (1.25 if day.month in (11, 12) else 1.0)
    return factor, 2 * math.pi * doy / 365.25


def ad_day_finals(
    seed: int,
    ad: Ad,
    day: date,
    fraction: float = 1.0,
    day_factor: tuple[float, float] | None = None,
) -> tuple | None:
    """Final (fully attributed) numbers of an ad on a local day, or None if it did not deliver.

    `fraction` < 1 is used for today (part of the day elapsed).
    """
    if not delivers(ad, day):
        return None
    u = uniforms16_bytes(b"%d\x1f%s\x1f%d" % (seed, ad.id.encode(), day.toordinal()))
    if u[0] < ad.zero_rate:
        return None
    factor, angle = day_factor or _day_factor(day)
    season = factor * (1.0 + 0.25 * math.sin(angle + 2 * math.pi * ad.season_phase))
    imp = int(ad.base_impressions * season * (0.6 + 0.8 * u[1]) * fraction + u[2])
    if imp <= 0:
        return None
    reach = max(1, int(imp / (1.02 + 0.5 * u[3])))
    clicks = min(imp, int(imp * ad.ctr * (0.7 + 0.6 * u[4]) + u[5]))
    ilc = min(clicks, int(clicks * ad.link_ratio + u[6]))
    spend = int(imp * ad.cpm_cents / 1000.0 * (0.85 + 0.3 * u[7]) + u[8])
    lpv = min(ilc, int(ilc * (0.6 + 0.3 * u[9]) + u[10]))
    base_click = ilc * ad.click_cvr * (0.5 + u[11])
    base_view = imp * ad.view_cvr * (0.5 + u[12])
    r = u[13]
    clicks28: list[int] = []
    views28: list[int] = []
    for k, t in enumerate(CONVERSION_TYPES):
        ratio = ad.lead_share * 3 if t == "lead" else FUNNEL[t] * (1 - ad.lead_share)
        frac_k = (r * (k + 1) * 7.31) % 1.0
        clicks28.append(int(base_click * ratio + frac_k))
        views28.append(int(base_view * ratio + (frac_k * 3.7) % 1.0))
    aov = int(ad.aov_cents * (0.8 + 0.4 * u[14]))
    return (imp, reach, clicks, ilc, spend, lpv, tuple(clicks28), tuple(views28), aov, u[15])


def maturity(age: int) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Share of the final 1d/7d/28d click and view counts visible when a day is `age` old."""
    seen = min(age + 1, ATTRIBUTION_DAYS)
    clicks = (CLICK_CDF[min(1, seen)], CLICK_CDF[min(7, seen)], CLICK_CDF[seen])
    views = (VIEW_CDF[min(1, seen)], VIEW_CDF[min(7, seen)], VIEW_CDF[seen])
    return clicks, views


_PURCHASE = CONV0 + 6 * CONVERSION_TYPES.index("purchase")


def observed_vector(finals: tuple, age: int, shares: tuple | None = None) -> list[int]:
    """The vector as reported when the day is `age` days old (0 = today).

    Window counts grow with age and freeze at 28 days; ordering 1d <= 7d <= 28d always holds
    (same uniform `u` for the randomized rounding of every window, monotone shares).
    """
    imp, reach, clicks, ilc, spend, lpv, c28, v28, aov, u = finals
    vec = [imp, reach, clicks, ilc, spend, lpv]
    (c1, c7, c28s), (v1, v7, v28s) = shares or maturity(age)
    zero = (0, 0, 0)
    for c, v in zip(c28, v28, strict=True):
        vec += (int(c * c1 + u), int(c * c7 + u), int(c * c28s + u)) if c else zero
        vec += (int(v * v1 + u), int(v * v7 + u), int(v * v28s + u)) if v else zero
    vec += [n * aov for n in vec[_PURCHASE : _PURCHASE + 6]]
    return vec


def split_int(total: int, weights: Sequence[int]) -> list[int]:
    """Split an integer by integer weights (largest remainder, ties to the lower index)."""
    s = sum(weights)
    if total == 0 or s == 0:
        return [0] * len(weights)
    raw = [total * w for w in weights]
    out = [x // s for x in raw]
    rest = total - sum(out)
    if rest:
        order = sorted(range(len(weights)), key=lambda i: (-(raw[i] % s), i))
        for i in order[:rest]:
            out[i] += 1
    return out


def _split_cumulative(values: Sequence[int], weights: Sequence[int]) -> list[list[int]]:
    """Split ordered cumulative values (e.g. 1d <= 7d <= 28d) keeping the order in each cell."""
    n = len(weights)
    cells = [[0] * len(values) for _ in range(n)]
    prev = 0
    running = [0] * n
    for j, v in enumerate(values):
        inc = split_int(v - prev, weights)
        prev = v
        for i in range(n):
            running[i] += inc[i]
            cells[i][j] = running[i]
    return cells


def split_vector(vec: Sequence[int], weights: Sequence[int]) -> list[list[int]]:
    """Split an ad-day vector over breakdown cells; every additive metric sums exactly."""
    n = len(weights)
    imp = split_int(vec[IMP], weights)
    reach = [min(r, i) for r, i in zip(split_int(vec[REACH], imp), imp, strict=True)]
    clicks = split_int(vec[CLICKS], imp)
    ilc = split_int(vec[ILC], clicks)
    spend = split_int(vec[SPEND], imp)
    lpv = split_int(vec[LPV], ilc)
    cells = [[imp[i], reach[i], clicks[i], ilc[i], spend[i], lpv[i]] for i in range(n)]
    for start in range(CONV0, VECTOR_LEN, 3):
        group = vec[start : start + 3]
        if group[2] == 0:
            for cell in cells:
                cell += (0, 0, 0)
            continue
        for cell, part in zip(cells, _split_cumulative(group, imp), strict=True):
            cell += part
    return cells


DEFAULT_CACHE_AD_DAYS = 400_000  # ~200 MB; least recently used days are evicted beyond it


class MetricsStore:
    """Per-account, per-day LRU cache of observed ad vectors (vectors are never mutated)."""

    def __init__(self, seed: int, max_ad_days: int = DEFAULT_CACHE_AD_DAYS) -> None:
        self.seed = seed
        self.max_ad_days = max_ad_days
        self._cached_ad_days = 0
        self._cache: OrderedDict[tuple[str, date, int, float], dict[str, list[int]]] = OrderedDict()
        self._weights: dict[tuple[str, tuple[str, ...]], list[tuple[tuple[str, ...], int]]] = {}
        self._lock = threading.Lock()

    def day_vectors(self, account: Account, day: date, now: datetime) -> dict[str, list[int]]:
        """Observed vectors of the account's delivering ads on a local day, as of `now`."""
        local_now = now.astimezone(account.tz)
        today = local_now.date()
        if day > today:
            return {}
        age = (today - day).days
        fraction = 1.0
        if age == 0:
            midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
            fraction = round((local_now - midnight).total_seconds() / 86400.0, 6)
        key = (account.id, day, min(age, ATTRIBUTION_DAYS), fraction)
        hit = self._cache.get(key)
        if hit is not None:
            with self._lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
            return hit
        out: dict[str, list[int]] = {}
        day_factor = _day_factor(day)
        shares = maturity(age)
        seed = self.seed
        for ad in account.ads:
            finals = ad_day_finals(seed, ad, day, fraction, day_factor)
            if finals is not None:
                out[ad.id] = observed_vector(finals, age, shares)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = out
                self._cached_ad_days += len(out)
            while self._cached_ad_days > self.max_ad_days and len(self._cache) > 1:
                _, evicted = self._cache.popitem(last=False)
                self._cached_ad_days -= len(evicted)
        return out

    def forget_account(self, account_id: str) -> None:
        """Drop every cache entry of an account (its delivery was restated)."""
        with self._lock:
            for key in [k for k in self._cache if k[0] == account_id]:
                self._cached_ad_days -= len(self._cache.pop(key))

    def forget_recent(self) -> None:
        """Drop cache entries that depend on the clock (days younger than 28 days)."""
        with self._lock:
            for key in [k for k in self._cache if k[2] < ATTRIBUTION_DAYS]:
                self._cached_ad_days -= len(self._cache.pop(key))

    def cell_weights(
        self, account: Account, ad: Ad, dims: tuple[str, ...]
    ) -> list[tuple[tuple[str, ...], int]]:
        """Breakdown cells (value tuples) of an ad with integer weights, deterministic."""
        key = (ad.id, dims)
        hit = self._weights.get(key)
        if hit is not None:
            return hit
        cells: list[tuple[tuple[str, ...], int]] = [((), 1_000_000)]
        for dim in dims:
            nxt = []
            for values, w in cells:
                for v in breakdown_values(account, dim):
                    share = 0.05 + unit(self.seed, ad.id, dim, v) ** 2
                    if dim == "age" and v == "65+":
                        share *= 0.3
                    nxt.append(((*values, v), max(1, int(w * share))))
            cells = nxt
        self._weights[key] = cells
        return cells


def days_between(since: date, until: date) -> list[date]:
    return [since + timedelta(days=i) for i in range((until - since).days + 1)]
