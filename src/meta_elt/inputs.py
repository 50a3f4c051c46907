"""Validation of operator input: every check names the input and the fix, in one line."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from meta_elt.dates import MAX_MONTHS_BACK, earliest_allowed

MAX_CONCURRENCY = 8

_ACCOUNT = re.compile(r"^(?:act_)?([0-9]{1,20})$")


class BadInput(ValueError):
    """An operator input is invalid. ``str()`` is the one line shown to the user."""

    def __init__(self, name: str, problem: str, fix: str) -> None:
        super().__init__(f"{name}: {problem}; {fix}")
        self.name = name


def tenant_id(value: str, name: str = "--tenant") -> str:
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise BadInput(
            name,
            f"{value!r} is not a UUID",
            "use the tenant's id (a UUID) from the tenants registry",
        ) from None
    return str(parsed)


def account_id(value: str, name: str = "--account") -> str:
    """Normalise ``act_123`` or ``123`` to ``act_123``."""
    match = _ACCOUNT.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise BadInput(
            name,
            f"{value!r} is not a Meta ad account id",
            "use act_<digits> or the digits shown in Ads Manager",
        )
    return f"act_{match.group(1)}"


def date(value: str, name: str) -> dt.date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError
        return dt.date.fromisoformat(value)
    except (ValueError, TypeError):
        raise BadInput(name, f"{value!r} is not a real date", "use YYYY-MM-DD") from None


def date_range(since: str, until: str, today: dt.date) -> tuple[dt.date, dt.date]:
    start = date(since, "--since")
    end = date(until, "--until")
    if start > end:
        raise BadInput("--since", f"{since} is after --until {until}", "swap them")
    if end > today:
        raise BadInput(
            "--until", f"{until} is in the future (today is {today})", f"use {today} or earlier"
        )
    floor = earliest_allowed(today)
    if start < floor:
        raise BadInput(
            "--since",
            f"{since} is beyond Meta's {MAX_MONTHS_BACK}-month limit",
            f"use {floor} or later",
        )
    return start, end


def positive_int(value: str | int, name: str, maximum: int | None = None) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadInput(name, f"{value!r} is not a whole number", "give 1 or more") from None
    if number < 1:
        raise BadInput(name, f"{number} is not positive", "give 1 or more")
    if maximum is not None and number > maximum:
        raise BadInput(
            name, f"{number} is above {maximum}", f"use at most {maximum} (Meta throttles beyond)"
        )
    return number


def non_negative_int(value: str | int, name: str, maximum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadInput(name, f"{value!r} is not a whole number", "give 0 or more") from None
    if not 0 <= number <= maximum:
        raise BadInput(name, f"{number} is outside 0-{maximum}", f"give 0 to {maximum}")
    return number
