"""The tap's settings: the defaults table, the JSON schema, and parsing into ``Settings``."""

from __future__ import annotations

import datetime as dt
import re
import typing as t
import uuid
from dataclasses import dataclass, field

from singer_sdk import typing as th

from tap_meta_insights.access_token import resolve_access_token
from tap_meta_insights.dates import earliest_allowed
from tap_meta_insights.errors import SettingError
from tap_meta_insights.graph_api import MAX_MONTHS_BACK
from tap_meta_insights.list_setting import parse_list_setting
from tap_meta_insights.reports import REPORT_TYPE, ReportSpec, parse_reports

# Single-tenant installs: records are stamped with the nil UUID (tenant_id is a key column).
DEFAULT_TENANT_ID = "00000000-0000-0000-0000-000000000000"

# Every setting, in the order of extract/extractors.meltano.yml, and its default (None: none;
# reports without one get default_reports()). CONFIG_SCHEMA and parse_settings take their
# defaults from here, and a test checks that the Meltano file declares the same settings with
# the same values.
DEFAULTS: dict[str, t.Any] = {
    "access_token": None,
    "access_token_file": None,
    "account_ids": None,
    "start_date": None,
    "end_date": None,
    "api_url": "https://graph.facebook.com",
    "api_version": "v23.0",
    "reports": None,
    "chunk_months": 1,
    "max_concurrent_jobs": 8,
    "lookback_days": 28,
    "job_timeout": 3600,
    "poll_interval": 5,
    "page_size": 500,
    "tenant_id": DEFAULT_TENANT_ID,
    "max_retries": 8,
    "max_retry_wait": 900,
}

_ACCOUNT_RE = re.compile(r"^(?:act_)?(\d{1,20})$")


@dataclass(frozen=True)
class Settings:
    """Validated, normalised settings."""

    access_token: str = field(repr=False)
    account_ids: tuple[str, ...]
    start_date: dt.date
    end_date: dt.date | None
    api_url: str
    api_version: str
    reports: tuple[ReportSpec, ...]
    chunk_months: int
    max_concurrent_jobs: int
    lookback_days: int
    job_timeout: float
    poll_interval: float
    page_size: int
    tenant_id: str
    max_retries: int
    max_retry_wait: float

    @property
    def graph_url(self) -> str:
        """``https://graph.facebook.com/v23.0``."""
        return f"{self.api_url.rstrip('/')}/{self.api_version.strip('/')}"


def _list_or_string(items: dict, description: str) -> th.CustomType:
    """A list setting: a JSON array of ``items``, or a string (comma-separated or JSON)."""
    return th.CustomType(
        {
            "anyOf": [
                {"type": "array", "items": items},
                {"type": "string"},
            ],
            "description": description,
        }
    )


# Seconds: a number, or a numeric string (Meltano passes decimal settings as strings).
_SECONDS = th.CustomType({"type": ["number", "string"]})

_SCHEMA = th.PropertiesList(
    th.Property(
        "access_token",
        th.StringType,
        secret=True,
        description="Meta Marketing API access token (user or system user) with ads_read.",
    ),
    th.Property(
        "access_token_file",
        th.StringType,
        description=(
            "Path of a file holding the access token (e.g. a mounted secret such as "
            "/run/secrets/meta_token), or of a UNIX socket that serves it (meta-elt passes one, "
            "so no token is ever written to disk)."
        ),
    ),
    th.Property(
        "account_ids",
        _list_or_string(
            {"type": "string"},
            "Ad accounts, as act_123 or 123: a list, a comma-separated string or a JSON list.",
        ),
    ),
    th.Property("start_date", th.DateType, description="First day to extract (YYYY-MM-DD)."),
    th.Property(
        "end_date",
        th.DateType,
        description="Last day to extract, inclusive (default: today in each account's timezone).",
    ),
    th.Property("api_url", th.StringType, description="Graph API base URL."),
    th.Property("api_version", th.StringType, description="Graph API version."),
    th.Property(
        "reports",
        th.CustomType(
            {
                "anyOf": [{"type": "array", "items": REPORT_TYPE.type_dict}, {"type": "string"}],
                "description": (
                    "Insights reports, one stream each: {name, level, fields, breakdowns, "
                    "action_breakdowns, action_attribution_windows, action_report_time}. "
                    "Default: ad, adset and campaign level."
                ),
            }
        ),
    ),
    th.Property("chunk_months", th.IntegerType, description="Months per async report job."),
    th.Property(
        "max_concurrent_jobs",
        th.IntegerType,
        description=(
            "Ceiling on async report jobs in flight across the whole run; below it, each "
            "account's jobs follow Meta's throttle headers."
        ),
    ),
    th.Property(
        "lookback_days",
        th.IntegerType,
        description=(
            "Days before the bookmark re-extracted on every incremental run (late attribution)."
        ),
    ),
    th.Property("job_timeout", _SECONDS, description="Seconds before a job is split."),
    th.Property(
        "poll_interval",
        _SECONDS,
        description=(
            "Longest wait between two polls of a job, seconds (the first comes after 0.5 s, "
            "the next when Meta's percent completion says the job should be done)."
        ),
    ),
    th.Property("page_size", th.IntegerType, description="Rows per result page."),
    th.Property(
        "tenant_id",
        th.StringType,
        description=(
            "Tenant UUID stamped on every record and leading every stream's key "
            "(default: the nil UUID, for single-tenant installs)."
        ),
    ),
    th.Property(
        "max_retries",
        th.IntegerType,
        description="Retries per request on rate limits and transient errors.",
    ),
    th.Property(
        "max_retry_wait",
        _SECONDS,
        description=(
            "Longest single wait between retries, seconds (caps Meta's regain-access estimate)."
        ),
    ),
).to_dict()

# The schema with the defaults from the table.
CONFIG_SCHEMA = {
    **_SCHEMA,
    "properties": {
        name: {**prop, **({} if DEFAULTS[name] is None else {"default": DEFAULTS[name]})}
        for name, prop in _SCHEMA["properties"].items()
    },
}


def parse_tenant_id(value: t.Any) -> str:
    """The tenant UUID, lower case; the nil UUID when not set."""
    if value in (None, ""):
        return DEFAULT_TENANT_ID
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        raise SettingError(
            f"tenant_id: {value!r} is not a UUID; use the tenants.id value (e.g. 4f9d1c3e-...)."
        ) from None


def normalise_account_id(value: t.Any) -> str:
    """``123`` / ``act_123`` / `` act_123 `` → ``act_123``; anything else → SettingError."""
    text = str(value).strip()
    found = _ACCOUNT_RE.match(text)
    if not found:
        raise SettingError(
            f"account_ids: {text!r} is not an ad account id; use act_<digits> or <digits> "
            "(e.g. act_1234567890)."
        )
    return f"act_{found.group(1)}"


def parse_date(name: str, value: t.Any) -> dt.date:
    """A YYYY-MM-DD date (a date-time is cut to its date)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise SettingError(f"{name}: {text!r} is not a date; use YYYY-MM-DD.") from None


def _positive_int(config: t.Mapping, name: str, minimum: int = 1) -> int:
    default = int(DEFAULTS[name])
    value = config.get(name, default)
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingError(f"{name}: {value!r} is not a whole number.") from None
    if number < minimum:
        raise SettingError(f"{name}: must be at least {minimum} (got {number}).")
    return number


def _positive_float(config: t.Mapping, name: str) -> float:
    default = float(DEFAULTS[name])
    value = config.get(name, default)
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingError(f"{name}: {value!r} is not a number of seconds.") from None
    if number <= 0:
        raise SettingError(f"{name}: must be greater than 0 (got {value}).")
    return number


def parse_settings(
    config: t.Mapping[str, t.Any],
    *,
    today: dt.date | None = None,
    require_credentials: bool = True,
) -> Settings:
    """Validate and normalise the tap config; raise SettingError with a one-line message.

    ``access_token_file`` is read here, and only when credentials are required (not for
    discovery, which needs no token).
    """
    today = today or dt.date.today()
    token = resolve_access_token(config, read_file=require_credentials)
    if require_credentials and not token:
        raise SettingError(
            "access_token: missing; set it (env TAP_FACEBOOK_ACCESS_TOKEN) to a Meta token "
            "with ads_read, or set access_token_file to a file or socket holding it."
        )
    accounts = tuple(
        dict.fromkeys(
            normalise_account_id(a)
            for a in parse_list_setting("account_ids", config.get("account_ids"))
        )
    )
    if require_credentials and not accounts:
        raise SettingError('account_ids: missing; list the ad accounts, e.g. ["act_123"].')
    if not config.get("start_date"):
        raise SettingError("start_date: missing; set the first day to extract as YYYY-MM-DD.")
    start = parse_date("start_date", config["start_date"])
    end = parse_date("end_date", config["end_date"]) if config.get("end_date") else None
    if end is not None and start > end:
        raise SettingError(f"start_date: {start} is after end_date {end}; swap or fix them.")
    oldest = earliest_allowed(today)
    if start < oldest:
        raise SettingError(
            f"start_date: {start} is more than {MAX_MONTHS_BACK} months back, beyond what Meta "
            f"serves; use {oldest} or later."
        )
    if start > today + dt.timedelta(days=1):
        raise SettingError(f"start_date: {start} is in the future; use a past date.")
    tenant_id = parse_tenant_id(config.get("tenant_id"))
    api_url = str(config.get("api_url") or DEFAULTS["api_url"]).strip()
    if not re.match(r"^https?://[^\s/]+", api_url):
        raise SettingError(f"api_url: {api_url!r} is not an http(s) URL.")
    if "access_token" in api_url:
        raise SettingError("api_url: must not contain an access token; use access_token.")
    api_version = str(config.get("api_version") or DEFAULTS["api_version"]).strip()
    if not re.match(r"^v\d+\.\d+$", api_version):
        raise SettingError(f"api_version: {api_version!r} must look like v23.0.")
    return Settings(
        access_token=token,
        account_ids=accounts,
        start_date=start,
        end_date=end,
        api_url=api_url,
        api_version=api_version,
        reports=parse_reports(config.get("reports")),
        chunk_months=_positive_int(config, "chunk_months"),
        max_concurrent_jobs=_positive_int(config, "max_concurrent_jobs"),
        lookback_days=_positive_int(config, "lookback_days", minimum=0),
        job_timeout=_positive_float(config, "job_timeout"),
        poll_interval=_positive_float(config, "poll_interval"),
        page_size=_positive_int(config, "page_size"),
        tenant_id=tenant_id,
        max_retries=_positive_int(config, "max_retries", minimum=0),
        max_retry_wait=_positive_float(config, "max_retry_wait"),
    )
