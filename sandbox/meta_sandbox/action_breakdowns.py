"""Action breakdowns beyond action_type: action items split into cells that sum exactly.

With ``action_breakdowns=["action_type", "action_device", ...]`` Meta returns one item per
action type and value of each extra dimension, the dimension's value under its own key. Here
every item of ``actions``/``action_values`` is split over the values of the dimensions that
apply to its action type (largest-remainder integer split with deterministic weights), so
each window and ``value`` of the cells add up exactly to the unbroken item, and the click
windows (1d <= 7d <= 28d) and view windows stay ordered within each cell. Dimensions that do
not apply to an action type (action_reaction only applies to post_reaction, the video ones to
video_view, carousel/canvas ones to those formats) leave its items unsplit and without the key,
as Meta does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .hashing import unit
from .metrics import split_int

CLICK_CHAIN = ("1d_click", "7d_click", "28d_click")
VIEW_CHAIN = ("1d_view", "7d_view", "28d_view")

# Values per dimension; "{acct}" is replaced by the account's digits.
DIMENSION_VALUES: dict[str, tuple[str, ...]] = {
    "action_device": ("android_smartphone", "iphone", "desktop", "ipad", "android_tablet", "other"),
    "action_destination": ("{acct}0001", "{acct}0002"),
    "action_target_id": ("{acct}0001", "{acct}0002"),
    "conversion_destination": ("website", "app"),
    "signal_source_bucket": ("pixel", "conversions_api"),
    "standard_event_content_type": ("product", "product_group"),
    "is_business_ai_assisted": ("0", "1"),
    "matched_persona_id": ("0",),
    "matched_persona_name": ("none",),
    "action_reaction": ("like", "love", "haha", "wow", "sad", "angry", "care"),
    "action_video_type": ("total", "autoplayed", "click_to_play"),
    "action_video_sound": ("sound_on", "sound_off"),
    "action_carousel_card_id": (),
    "action_carousel_card_name": (),
    "action_canvas_component_name": (),
}
# Dimensions that only apply to some action types (others: every action type).
APPLIES_TO: dict[str, frozenset[str]] = {
    "action_reaction": frozenset({"post_reaction"}),
    "action_video_type": frozenset({"video_view"}),
    "action_video_sound": frozenset({"video_view"}),
    "action_carousel_card_id": frozenset(),
    "action_carousel_card_name": frozenset(),
    "action_canvas_component_name": frozenset(),
}


def _split_chain(totals: Sequence[int], weights: Sequence[int]) -> list[list[int]]:
    """Split ordered cumulative totals, keeping the order within each cell."""
    cells = [[0] * len(totals) for _ in weights]
    prev = 0
    running = [0] * len(weights)
    for j, total in enumerate(totals):
        for i, inc in enumerate(split_int(total - prev, weights)):
            running[i] += inc
            cells[i][j] = running[i]
        prev = total
    return cells


def _to_int(value: str, money: bool) -> int:
    if not money:
        return int(value)
    whole, _, frac = value.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def _to_str(n: int, money: bool) -> str:
    return f"{n // 100}.{n % 100:02d}" if money else str(n)


def compile_expander(
    dims: Sequence[str], account_digits: str, money: bool
) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """``expand(items)`` splitting each action item over the extra dimensions' values."""
    extra = [d for d in dims if d != "action_type"]

    def cells_for(action_type: str) -> list[tuple[tuple[tuple[str, str], ...], int]]:
        cells: list[tuple[tuple[tuple[str, str], ...], int]] = [((), 1_000_000)]
        for dim in extra:
            applies = APPLIES_TO.get(dim)
            values = DIMENSION_VALUES.get(dim, ())
            if (applies is not None and action_type not in applies) or not values:
                continue
            nxt = []
            for keys, w in cells:
                for raw in values:
                    value = raw.replace("{acct}", account_digits)
                    share = 0.1 + unit("action_breakdown", dim, value, action_type) ** 2
                    nxt.append(((*keys, (dim, value)), max(1, int(w * share))))
            cells = nxt
        return cells

    cache: dict[str, list[tuple[tuple[tuple[str, str], ...], int]]] = {}

    def expand(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for item in items:
            action_type = item["action_type"]
            cells = cache.get(action_type)
            if cells is None:
                cells = cache[action_type] = cells_for(action_type)
            if not cells[0][0]:  # no dimension applies to this action type
                out.append(item)
                continue
            weights = [w for _, w in cells]
            parts: dict[str, list[int]] = {}
            for chain in (CLICK_CHAIN, VIEW_CHAIN):
                present = [w for w in chain if w in item]
                if present:
                    split = _split_chain([_to_int(item[w], money) for w in present], weights)
                    for j, w in enumerate(present):
                        parts[w] = [cell[j] for cell in split]
            if "7d_click" in parts and "1d_view" in parts:
                parts["value"] = [
                    a + b for a, b in zip(parts["7d_click"], parts["1d_view"], strict=True)
                ]
            else:
                parts["value"] = split_int(_to_int(item["value"], money), weights)
            for i, (keys, _) in enumerate(cells):
                if not any(p[i] for p in parts.values()):
                    continue
                cell: dict[str, Any] = {"action_type": action_type, **dict(keys)}
                for key, raw in item.items():
                    if key in parts:
                        cell[key] = _to_str(parts[key][i], money)
                    elif key == "dda":
                        cell[key] = _to_str(parts["value"][i], money)
                    elif key not in cell:
                        cell[key] = raw  # 1d_ev ("0")
                out.append(cell)
        return out

    return expand
