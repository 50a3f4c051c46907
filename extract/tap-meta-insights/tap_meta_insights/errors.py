"""Error classes, Graph API error classification and secret redaction.

Every message that can reach a log line or an exception goes through :func:`redact`, so an
access token never leaves the process (it is sent in an ``Authorization`` header, but Meta
echoes it in ``paging.next`` URLs and users sometimes paste it into ``api_url``).
"""

from __future__ import annotations

import enum
import re
import typing as t
from dataclasses import dataclass

_TOKEN_IN_URL = re.compile(r"(access_token=)[^&\s\"']+", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._\-|%]+")


def redact(text: str, secrets: t.Iterable[str] = ()) -> str:
    """Remove access tokens from ``text`` (URL parameters, bearer headers and known values)."""
    text = _TOKEN_IN_URL.sub(r"\1REDACTED", text)
    text = _BEARER.sub(r"\1REDACTED", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "REDACTED")
    return text


class SettingError(ValueError):
    """A setting is invalid; the message is one line naming the setting and the fix."""


class TapError(Exception):
    """Base class of the tap's own errors."""


class TapFatalError(TapError):
    """An error the run cannot recover from; its message is one actionable line."""


class TooMuchDataError(TapError):
    """Meta refused the request because it covers too much data; split it."""


class JobFailedError(TapError):
    """An async report job ended in "Job Failed"/"Job Skipped", timed out, or its results
    became unreadable (code 2601/1815107 with ``is_transient: false``)."""


class RetryableError(TapError):
    """A rate limit or transient error that survived every retry."""


class ErrorKind(enum.Enum):
    """How the tap reacts to an error response."""

    RATE_LIMIT = "rate_limit"  # retry with backoff, honouring the regain-access estimate
    TRANSIENT = "transient"  # retry with backoff
    JOB_FAILED = "job_failed"  # the report run is unusable: run the job again (2601, not transient)
    TOO_MUCH_DATA = "too_much_data"  # split the job (or shrink the page)
    TOKEN = "token"  # fail fast: refresh the token
    PERMISSION = "permission"  # fail fast: no access to the account
    UNKNOWN_ACCOUNT = "unknown_account"  # fail fast: check account_ids
    BAD_PARAMETER = "bad_parameter"  # fail fast: name the parameter
    DATE_LIMIT = "date_limit"  # fail fast: start date beyond 37 months
    OTHER = "other"  # fail with Meta's message


RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80000, 80009)})
TRANSIENT_CODES = frozenset({2, 960})
PERMISSION_CODES = frozenset({10, 200, 294, *range(200, 300)})
TOO_MUCH_DATA_SUBCODES = frozenset({1487534})
REDUCE_DATA_TEXT = "reduce the amount of data"

_INSIGHTS_PARAMS = (
    "action_attribution_windows",
    "action_breakdowns",
    "action_report_time",
    "breakdowns",
    "time_increment",
    "time_range",
    "filtering",
    "fields",
    "level",
    "limit",
)


@dataclass(frozen=True)
class GraphError:
    """A parsed Graph API error response."""

    http_status: int
    code: int | None
    subcode: int | None
    message: str
    is_transient: bool
    error_user_msg: str = ""
    regain_minutes: float = 0.0

    @classmethod
    def from_response(cls, http_status: int, body: t.Any) -> GraphError:
        """Build from an HTTP status and a decoded JSON body (or anything else)."""
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            return cls(http_status, None, None, f"HTTP {http_status}", False)

        def _int(value: t.Any) -> int | None:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None

        regain = 0.0
        data = err.get("error_data")
        if isinstance(data, dict):
            try:
                regain = float(data.get("estimated_time_to_regain_access") or 0)
            except (TypeError, ValueError):
                regain = 0.0
        return cls(
            http_status=http_status,
            code=_int(err.get("code")),
            subcode=_int(err.get("error_subcode")),
            message=str(err.get("message") or ""),
            is_transient=bool(err.get("is_transient")),
            error_user_msg=str(err.get("error_user_msg") or err.get("error_user_title") or ""),
            regain_minutes=regain,
        )

    @property
    def label(self) -> str:
        """``code 100/1487534`` style label."""
        if self.code is None:
            return f"HTTP {self.http_status}"
        return f"code {self.code}" + (f"/{self.subcode}" if self.subcode else "")


def classify(err: GraphError) -> ErrorKind:
    """Decide how to react to a Graph API error."""
    code, sub, msg = err.code, err.subcode, err.message.lower()
    if code == 190 or code == 102:
        return ErrorKind.TOKEN
    if code in RATE_LIMIT_CODES:
        return ErrorKind.RATE_LIMIT
    if code == 100 and sub in TOO_MUCH_DATA_SUBCODES:
        return ErrorKind.TOO_MUCH_DATA
    if code == 1 and REDUCE_DATA_TEXT in msg:
        return ErrorKind.TOO_MUCH_DATA
    if code == 2601 or sub == 1815107:
        # "Error accessing adreport job": transient while the job is finishing (retry the
        # read); not transient when the run failed or its results are gone, which no retry of
        # the same read fixes: the caller runs the job again (see DECISIONLOG).
        return ErrorKind.TRANSIENT if err.is_transient else ErrorKind.JOB_FAILED
    if code == 3018:
        return ErrorKind.DATE_LIMIT
    if code == 803 or (code == 100 and (sub == 33 or "does not exist" in msg)):
        return ErrorKind.UNKNOWN_ACCOUNT
    if code in PERMISSION_CODES:
        return ErrorKind.PERMISSION
    if code == 100:
        return ErrorKind.BAD_PARAMETER
    if code in TRANSIENT_CODES or code == 1 or err.is_transient:
        return ErrorKind.TRANSIENT
    if code is None and (err.http_status >= 500 or err.http_status in (408, 429)):
        return ErrorKind.TRANSIENT
    if err.http_status >= 500 and code not in (100, 190):
        return ErrorKind.TRANSIENT
    return ErrorKind.OTHER


def bad_parameter_name(err: GraphError, params: t.Mapping[str, t.Any] | None = None) -> str:
    """Best guess at the parameter Meta rejected, from its message (and the request)."""
    text = f"{err.message} {err.error_user_msg}"
    field = re.search(r"nonexisting field \(([^)]+)\)", text)
    if field:
        return f"fields ({field.group(1)})"
    indexed = re.search(r"\b([a-z_]+)\[(\d+)\]", text)
    if indexed:
        name, index = indexed.group(1), int(indexed.group(2))
        values = _as_list((params or {}).get(name))
        if index < len(values):
            return f"{name} ({values[index]})"
        return name
    named = re.search(r"param(?:eter)?\s+['\"]?([a-z_]+)", text, re.IGNORECASE)
    if named:
        return named.group(1)
    for name in _INSIGHTS_PARAMS:
        if re.search(rf"\b{name}\b", text):
            return name
    return "unknown parameter"


def _as_list(value: t.Any) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",")]
    return []


def fatal_message(
    err: GraphError,
    kind: ErrorKind,
    *,
    account: str | None,
    what: str,
    params: t.Mapping[str, t.Any] | None = None,
) -> str:
    """One actionable line for an error the run cannot recover from."""
    meta = (err.message or err.error_user_msg).strip().rstrip(".")
    where = f" on ad account {account}" if account else ""
    if kind is ErrorKind.TOKEN:
        return (
            f"Meta access token is invalid or expired ({err.label}: {meta}): "
            "refresh the access token and update the access_token setting "
            "(TAP_FACEBOOK_ACCESS_TOKEN)."
        )
    if kind is ErrorKind.PERMISSION:
        return (
            f"No permission{where} ({err.label}: {meta}): give the token's user or system user "
            "ads_read access to the account, or remove it from account_ids."
        )
    if kind is ErrorKind.UNKNOWN_ACCOUNT:
        return (
            f"Ad account {account or '?'} does not exist or is not visible to this token "
            f"({err.label}: {meta}): check account_ids."
        )
    if kind is ErrorKind.BAD_PARAMETER:
        return (
            f"Meta rejected parameter '{bad_parameter_name(err, params)}' while {what}{where} "
            f"({err.label}: {meta}): fix it in the reports setting (fields, breakdowns, "
            "action_breakdowns, action_attribution_windows, action_report_time)."
        )
    if kind is ErrorKind.DATE_LIMIT:
        return (
            f"Meta refused dates older than 37 months{where} ({err.label}: {meta}): "
            "move start_date later."
        )
    return f"Meta API error while {what}{where} ({err.label}: {meta})."
