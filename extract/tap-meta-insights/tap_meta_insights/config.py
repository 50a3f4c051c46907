"""Settings: JSON schema, defaults, normalisation and one-line validation errors."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import stat
import typing as t
import uuid
from dataclasses import dataclass, field

from singer_sdk import typing as th

DEFAULT_API_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v23.0"
# Single-tenant installs: records are stamped with the nil UUID (tenant_id is a key column).
DEFAULT_TENANT_ID = "00000000-0000-0000-0000-000000000000"
TOKEN_SOCKET_TIMEOUT = 10.0
MAX_TOKEN_BYTES = 64 * 1024
MAX_MONTHS_BACK = 37
LEVELS = ("ad", "adset", "campaign", "account")
REPORT_TIMES = ("impression", "conversion", "mixed", "lifetime")
ATTRIBUTION_WINDOWS = (
    "1d_view",
    "7d_view",
    "28d_view",
    "1d_click",
    "7d_click",
    "28d_click",
    "1d_ev",
    "dda",
    "default",
    "skan_view",
    "skan_click",
)
DEFAULT_WINDOWS = ("1d_view", "7d_click", "28d_click")
DEFAULT_REPORT_TIME = "mixed"
COMMON_FIELDS = (
    "account_id",
    "account_name",
    "account_currency",
    "impressions",
    "reach",
    "frequency",
    "clicks",
    "inline_link_clicks",
    "spend",
    "ctr",
    "cpc",
    "cpm",
    "actions",
    "action_values",
)
# The ids and names each level can return (a level cannot return objects below it).
LEVEL_OBJECT_FIELDS: dict[str, tuple[str, ...]] = {
    "account": (),
    "campaign": ("campaign_id", "campaign_name"),
    "adset": ("campaign_id", "campaign_name", "adset_id", "adset_name"),
    "ad": ("campaign_id", "campaign_name", "adset_id", "adset_name", "ad_id", "ad_name"),
}
ALL_OBJECT_FIELDS = LEVEL_OBJECT_FIELDS["ad"]
# Every effective_status of each edge: Meta hides ARCHIVED and DELETED objects by default,
# but their history is in the insights, so listings ask for all of them.
ALL_STATUSES: dict[str, tuple[str, ...]] = {
    "campaigns": ("ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "IN_PROCESS", "WITH_ISSUES"),
    "adsets": (
        "ACTIVE",
        "PAUSED",
        "DELETED",
        "CAMPAIGN_PAUSED",
        "ARCHIVED",
        "IN_PROCESS",
        "WITH_ISSUES",
    ),
    "ads": (
        "ACTIVE",
        "PAUSED",
        "DELETED",
        "PENDING_REVIEW",
        "DISAPPROVED",
        "PREAPPROVED",
        "PENDING_BILLING_INFO",
        "CAMPAIGN_PAUSED",
        "ARCHIVED",
        "ADSET_PAUSED",
        "IN_PROCESS",
        "WITH_ISSUES",
    ),
}

_ACCOUNT_RE = re.compile(r"^(?:act_)?(\d{1,20})$")
_REPORT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,50}$")


class SettingError(ValueError):
    """A setting is invalid; the message is one line naming the setting and the fix."""


@dataclass(frozen=True)
class ReportSpec:
    """One insights report (one stream): a level plus what to ask Meta for."""

    name: str
    level: str
    fields: tuple[str, ...]
    breakdowns: tuple[str, ...] = ()
    action_breakdowns: tuple[str, ...] = ("action_type",)
    action_attribution_windows: tuple[str, ...] = DEFAULT_WINDOWS
    action_report_time: str = DEFAULT_REPORT_TIME

    @property
    def stream_name(self) -> str:
        """The Singer stream name."""
        return f"insights_{self.name}"

    @property
    def object_id_field(self) -> str:
        """``ad_id`` etc., or ``account_id`` at account level."""
        return f"{self.level}_id"

    @property
    def request_fields(self) -> tuple[str, ...]:
        """Fields sent to Meta: the report's fields plus the level's ids, minus lower levels."""
        allowed_objects = set(LEVEL_OBJECT_FIELDS[self.level])
        wanted = [f for f in self.fields if f not in ALL_OBJECT_FIELDS or f in allowed_objects]
        for required in ("account_id", *LEVEL_OBJECT_FIELDS[self.level][-2:]):
            if required not in wanted:
                wanted.append(required)
        return tuple(dict.fromkeys(wanted))


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
    chunk_months: int = 1
    max_concurrent_jobs: int = 2
    lookback_days: int = 28
    job_timeout: float = 3600.0
    poll_interval: float = 5.0
    page_size: int = 500
    tenant_id: str = DEFAULT_TENANT_ID
    max_retries: int = 8
    max_retry_wait: float = 900.0
    extra: dict = field(default_factory=dict)

    @property
    def graph_url(self) -> str:
        """``https://graph.facebook.com/v23.0``."""
        return f"{self.api_url.rstrip('/')}/{self.api_version.strip('/')}"


def default_reports() -> list[dict]:
    """The default ``reports``: ad, adset and campaign level delivery and conversions."""
    return [
        {
            "name": level,
            "level": level,
            "fields": [*COMMON_FIELDS, *LEVEL_OBJECT_FIELDS[level]],
            "breakdowns": [],
            "action_breakdowns": ["action_type"],
            "action_attribution_windows": list(DEFAULT_WINDOWS),
            "action_report_time": DEFAULT_REPORT_TIME,
        }
        for level in ("ad", "adset", "campaign")
    ]


def _list_or_string(item: th.JSONTypeHelper, description: str) -> th.Property:
    return th.CustomType(
        {
            "anyOf": [
                {"type": "array", "items": item.type_dict},
                {"type": "string"},
            ],
            "description": description,
        }
    )


# Seconds: a number, or a numeric string (Meltano passes decimal settings as strings).
_SECONDS = th.CustomType({"type": ["number", "string"]})

REPORT_TYPE = th.ObjectType(
    th.Property(
        "name", th.StringType, required=True, description="Report name; stream insights_<name>."
    ),
    th.Property(
        "level",
        th.StringType(allowed_values=list(LEVELS)),
        required=True,
        description="ad, adset, campaign or account.",
    ),
    th.Property("fields", th.ArrayType(th.StringType), description="Insights fields."),
    th.Property(
        "breakdowns", th.ArrayType(th.StringType), description="e.g. age, gender, country."
    ),
    th.Property(
        "action_breakdowns", th.ArrayType(th.StringType), description="Default [action_type]."
    ),
    th.Property(
        "action_attribution_windows",
        th.ArrayType(th.StringType),
        description="Default [1d_view, 7d_click, 28d_click].",
    ),
    th.Property(
        "action_report_time",
        th.StringType,
        description="impression, conversion, mixed (default) or lifetime.",
    ),
)

CONFIG_SCHEMA = th.PropertiesList(
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
            th.StringType,
            "Ad accounts, as act_123 or 123: a list, a comma-separated string or a JSON list.",
        ),
    ),
    th.Property("start_date", th.DateType, description="First day to extract (YYYY-MM-DD)."),
    th.Property(
        "end_date",
        th.DateType,
        description="Last day to extract, inclusive (default: today in each account's timezone).",
    ),
    th.Property(
        "api_url", th.StringType, default=DEFAULT_API_URL, description="Graph API base URL."
    ),
    th.Property(
        "api_version", th.StringType, default=DEFAULT_API_VERSION, description="Graph API version."
    ),
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
    th.Property(
        "chunk_months", th.IntegerType, default=1, description="Months per async report job."
    ),
    th.Property(
        "max_concurrent_jobs",
        th.IntegerType,
        default=2,
        description="Async report jobs in flight at once, across the whole run.",
    ),
    th.Property(
        "lookback_days",
        th.IntegerType,
        default=28,
        description=(
            "Days before the bookmark re-extracted on every incremental run (late attribution)."
        ),
    ),
    th.Property(
        "job_timeout", _SECONDS, default=3600, description="Seconds before a job is split."
    ),
    th.Property(
        "poll_interval", _SECONDS, default=5, description="Initial job poll interval, seconds."
    ),
    th.Property("page_size", th.IntegerType, default=500, description="Rows per result page."),
    th.Property(
        "tenant_id",
        th.StringType,
        default=DEFAULT_TENANT_ID,
        description=(
            "Tenant UUID stamped on every record and leading every stream's key "
            "(default: the nil UUID, for single-tenant installs)."
        ),
    ),
    th.Property(
        "max_retries",
        th.IntegerType,
        default=8,
        description="Retries per request on rate limits and transient errors.",
    ),
    th.Property(
        "max_retry_wait",
        _SECONDS,
        default=900,
        description=(
            "Longest single wait between retries, seconds (caps Meta's regain-access estimate)."
        ),
    ),
).to_dict()


def _read_socket(path: str) -> bytes:
    """Everything a UNIX socket at ``path`` sends until it closes the connection."""
    chunks: list[bytes] = []
    size = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(TOKEN_SOCKET_TIMEOUT)
        conn.connect(path)
        while size <= MAX_TOKEN_BYTES:
            chunk = conn.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks)


def _read_token_source(path: str) -> bytes:
    """The bytes of a token file, or what the UNIX socket at ``path`` serves."""
    if stat.S_ISSOCK(os.stat(path).st_mode):
        return _read_socket(path)
    with open(path, "rb") as file:
        return file.read(MAX_TOKEN_BYTES + 1)


def read_token_file(path: str) -> str:
    """The access token in the file (or served by the UNIX socket) at ``path``, stripped.

    Errors name the setting and the path, never the content.
    """
    try:
        raw = _read_token_source(path)
    except OSError as exc:  # missing, unreadable, refused, timed out (TimeoutError)
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise SettingError(
            f"access_token_file: cannot read {path}: {reason}; point it at a readable token "
            "file, or at the socket of a running meta-elt."
        ) from None
    if len(raw) > MAX_TOKEN_BYTES:
        raise SettingError(
            f"access_token_file: {path} holds more than {MAX_TOKEN_BYTES} bytes; it must hold "
            "only the access token."
        )
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SettingError(
            f"access_token_file: {path} is not UTF-8 text; it must hold only the access token."
        ) from None
    if not token:
        raise SettingError(
            f"access_token_file: {path} holds no token (empty); write the access token into it."
        )
    return token


def _check_token(name: str, token: str) -> str:
    # A newline or control character would put the token in requests' "invalid header"
    # error (which quotes the header value), so refuse it here, without quoting it.
    if not token.isprintable() or any(c.isspace() for c in token):
        raise SettingError(
            f"{name}: the token contains whitespace or control characters; give only the token."
        )
    return token


def resolve_access_token(config: t.Mapping[str, t.Any], *, read_file: bool = True) -> str:
    """``access_token``, or the token read from ``access_token_file`` (one of them, not both).

    With ``read_file=False`` (discovery) the file is not read and the token is empty.
    """
    token = str(config.get("access_token") or "").strip()
    path = str(config.get("access_token_file") or "").strip()
    if token and path:
        raise SettingError(
            "access_token: set one of access_token or access_token_file, not both "
            "(unset TAP_FACEBOOK_ACCESS_TOKEN or TAP_FACEBOOK_ACCESS_TOKEN_FILE)."
        )
    if path:
        return _check_token("access_token_file", read_token_file(path)) if read_file else ""
    return _check_token("access_token", token) if token else ""


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


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day ``months`` later (clamped to the month's last day)."""
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    month += 1
    last = _month_last_day(year, month)
    return dt.date(year, month, min(day.day, last))


def _month_last_day(year: int, month: int) -> int:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


def earliest_allowed(today: dt.date) -> dt.date:
    """Oldest day Meta serves insights for: 37 months back."""
    return add_months(today, -MAX_MONTHS_BACK) + dt.timedelta(days=1)


def _positive_int(config: t.Mapping, name: str, default: int, minimum: int = 1) -> int:
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


def _positive_float(config: t.Mapping, name: str, default: float) -> float:
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


def _str_list(report: str, key: str, value: t.Any) -> tuple[str, ...]:
    items = parse_list_setting(f"reports[{report}].{key}", value)
    if not all(isinstance(i, str) and i.strip() for i in items):
        raise SettingError(f"reports[{report}].{key}: expected a list of names.")
    return tuple(dict.fromkeys(i.strip() for i in items))


def parse_reports(value: t.Any) -> tuple[ReportSpec, ...]:
    """Validate the ``reports`` setting (default: ad, adset, campaign)."""
    raw = parse_list_setting("reports", value) if value not in (None, "", []) else []
    if not raw:
        raw = default_reports()
    specs: list[ReportSpec] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise SettingError(f"reports[{index}]: expected an object with name and level.")
        name = str(item.get("name") or "").strip()
        if not _REPORT_NAME_RE.match(name) or name == "windows":
            raise SettingError(
                f"reports[{index}].name: {name!r} must be lowercase letters, digits and _ "
                "(and not 'windows'); it names the stream insights_<name>."
            )
        level = str(item.get("level") or "").strip()
        if level not in LEVELS:
            raise SettingError(
                f"reports[{name}].level: {level!r} must be one of {', '.join(LEVELS)}."
            )
        fields = _str_list(name, "fields", item.get("fields")) or (
            *COMMON_FIELDS,
            *LEVEL_OBJECT_FIELDS[level],
        )
        windows = _str_list(
            name, "action_attribution_windows", item.get("action_attribution_windows")
        )
        for window in windows:
            if window not in ATTRIBUTION_WINDOWS:
                raise SettingError(
                    f"reports[{name}].action_attribution_windows: {window!r} is not one of "
                    f"{', '.join(ATTRIBUTION_WINDOWS)}."
                )
        report_time = str(item.get("action_report_time") or DEFAULT_REPORT_TIME).strip()
        if report_time not in REPORT_TIMES:
            raise SettingError(
                f"reports[{name}].action_report_time: {report_time!r} must be one of "
                f"{', '.join(REPORT_TIMES)}."
            )
        action_breakdowns = item.get("action_breakdowns")
        specs.append(
            ReportSpec(
                name=name,
                level=level,
                fields=fields,
                breakdowns=_str_list(name, "breakdowns", item.get("breakdowns")),
                action_breakdowns=(
                    ("action_type",)
                    if action_breakdowns is None
                    else _str_list(name, "action_breakdowns", action_breakdowns)
                ),
                action_attribution_windows=windows or DEFAULT_WINDOWS,
                action_report_time=report_time,
            )
        )
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SettingError(f"reports: names must be unique; repeated: {', '.join(duplicates)}.")
    return tuple(specs)


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
    api_url = str(config.get("api_url") or DEFAULT_API_URL).strip()
    if not re.match(r"^https?://[^\s/]+", api_url):
        raise SettingError(f"api_url: {api_url!r} is not an http(s) URL.")
    if "access_token" in api_url:
        raise SettingError("api_url: must not contain an access token; use access_token.")
    api_version = str(config.get("api_version") or DEFAULT_API_VERSION).strip()
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
        chunk_months=_positive_int(config, "chunk_months", 1),
        max_concurrent_jobs=_positive_int(config, "max_concurrent_jobs", 2),
        lookback_days=_positive_int(config, "lookback_days", 28, minimum=0),
        job_timeout=_positive_float(config, "job_timeout", 3600.0),
        poll_interval=_positive_float(config, "poll_interval", 5.0),
        page_size=_positive_int(config, "page_size", 500),
        tenant_id=tenant_id,
        max_retries=_positive_int(config, "max_retries", 8, minimum=0),
        max_retry_wait=_positive_float(config, "max_retry_wait", 900.0),
    )
