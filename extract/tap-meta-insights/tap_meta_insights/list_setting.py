"""Parsing of list-valued settings (account_ids, reports and their lists of names)."""

from __future__ import annotations

import json
import typing as t

from tap_meta_insights.errors import SettingError


def parse_list_setting(name: str, value: t.Any) -> list:
    """A list given as a list, a JSON list string or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SettingError(
                    f"{name}: not valid JSON ({exc.msg}); give a JSON list."
                ) from exc
            if not isinstance(parsed, list):
                raise SettingError(f"{name}: expected a JSON list.")
            return parsed
        return [part.strip() for part in text.split(",") if part.strip()]
    raise SettingError(f"{name}: expected a list or a comma-separated string.")
