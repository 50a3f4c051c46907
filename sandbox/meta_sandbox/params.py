"""Parsing of list-valued request parameters, as the Graph API and the admin API take them."""

from __future__ import annotations

import json
from typing import Any

from . import errors


def csv_values(raw: str | None) -> list[str]:
    """Comma-separated values, blanks dropped."""
    return [v.strip() for v in (raw or "").split(",") if v.strip()]


def field_names(raw: str | None) -> list[str]:
    """Top-level names of a ``fields`` parameter (``a,b{c,d},e.limit(2)`` gives a, b, e)."""
    if not raw:
        return []
    names, depth, cur = [], 0, ""
    for ch in raw:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            names.append(cur.strip())
            cur = ""
        elif depth == 0:
            cur += ch
    if cur.strip():
        names.append(cur.strip())
    return [n.split(".")[0] for n in names if n]


def json_list(raw: Any, name: str) -> list[Any]:
    """A list parameter given as a JSON array or as comma-separated values."""
    if isinstance(raw, list):
        return raw
    text = str(raw).strip()
    if not text.startswith("["):
        return csv_values(text)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise errors.invalid_param(f"Param {name} must be an array") from exc
    if not isinstance(value, list):
        raise errors.invalid_param(f"Param {name} must be an array")
    return value
