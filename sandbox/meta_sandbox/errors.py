"""Graph API errors, shaped like Meta's: HTTP status + {"error": {...}}."""

from __future__ import annotations

from datetime import datetime
from typing import Any

RATE_LIMIT_URL = "https://developers.facebook.com/docs/graph-api/overview/rate-limiting"


class GraphError(Exception):
    """An error answered by the Graph API."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        type_: str = "OAuthException",
        subcode: int | None = None,
        is_transient: bool = False,
        user_title: str | None = None,
        user_msg: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.type = type_
        self.subcode = subcode
        self.is_transient = is_transient
        self.user_title = user_title
        self.user_msg = user_msg
        self.headers = dict(headers or {})

    def body(self, fbtrace_id: str) -> dict[str, Any]:
        err: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        err["is_transient"] = self.is_transient
        if self.user_title:
            err["error_user_title"] = self.user_title
        if self.user_msg:
            err["error_user_msg"] = self.user_msg
        err["fbtrace_id"] = fbtrace_id
        return {"error": err}


def invalid_param(message: str, subcode: int | None = None) -> GraphError:
    return GraphError(400, 100, f"(#100) {message}", subcode=subcode)


def unknown_object(object_id: str, method: str = "get") -> GraphError:
    return GraphError(
        400,
        100,
        f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read "
        "the Graph API documentation at https://developers.facebook.com/docs/graph-api",
        type_="GraphMethodException",
        subcode=33,
    )


def nonexisting_field(name: str, node_type: str) -> GraphError:
    return invalid_param(f"Tried accessing nonexisting field ({name}) on node type ({node_type})")


def missing_token() -> GraphError:
    return GraphError(400, 104, "An access token is required to request this resource.")


def invalid_token() -> GraphError:
    return GraphError(
        400,
        190,
        "Invalid OAuth access token - Cannot parse access token",
        headers={"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token" "Invalid token"'},
    )


def expired_token(expired_at: datetime, now: datetime) -> GraphError:
    fmt = "%A, %d-%b-%y %H:%M:%S UTC"
    return GraphError(
        401,
        190,
        f"Error validating access token: Session has expired on {expired_at.strftime(fmt)}. "
        f"The current time is {now.strftime(fmt)}.",
        subcode=463,
        headers={"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token" "Expired"'},
    )


def no_permission(account_id: str, code: int = 200) -> GraphError:
    if code == 10:
        return GraphError(
            400, 10, "(#10) Application does not have permission for this action", subcode=None
        )
    return GraphError(
        403,
        200,
        f"(#200) Ad account owner has NOT grant ads_management or ads_read permission "
        f"(account {account_id})",
        type_="OAuthException",
        subcode=1815066,
    )


def too_much_data() -> GraphError:
    return invalid_param(
        "Please reduce the amount of data you're asking for, then retry your request",
        subcode=1487534,
    )


def reduce_data_500() -> GraphError:
    return GraphError(
        500,
        1,
        "Please reduce the amount of data you're asking for, then retry your request",
        type_="FacebookApiException",
        subcode=99,
    )


def unknown_error_500(code: int) -> GraphError:
    if code == 2:
        message = "An unexpected error has occurred. Please retry your request later."
    else:
        message = "An unknown error occurred"
    return GraphError(
        500, code, message, type_="FacebookApiException", subcode=99, is_transient=True
    )


def start_too_old() -> GraphError:
    return GraphError(
        400,
        3018,
        "(#3018) The start date of the time range cannot be beyond 37 months from the current date",
    )


def report_not_ready() -> GraphError:
    return GraphError(
        400,
        2601,
        "(#2601) Error accessing adreport job.",
        subcode=1815107,
        is_transient=True,
        user_title="Loading Async Ads Report Failed",
        user_msg="Results of this report are not available yet; wait until the job completes.",
    )


def report_failed() -> GraphError:
    return GraphError(
        400,
        2601,
        "(#2601) Error accessing adreport job.",
        subcode=1815107,
        user_title="Async Ads Report Failed",
        user_msg="The report job failed, so it has no results. Create a new report job.",
    )


RATE_LIMIT_MESSAGES = {
    4: ("(#4) Application request limit reached", 1504022),
    17: ("(#17) User request limit reached", 2446079),
    613: ("(#613) Calls to this api have exceeded the rate limit.", 1487742),
    80000: (
        "(#80000) There have been too many calls from this ad-account. Wait a bit and try "
        f"again. For more info, please refer to {RATE_LIMIT_URL}.",
        2446079,
    ),
    80004: (
        "(#80004) There have been too many calls to this ad-account. Wait a bit and try "
        f"again. For more info, please refer to {RATE_LIMIT_URL}#ads-management.",
        2446079,
    ),
    32: ("(#32) Page request limit reached", None),
}
# The other business-use-case limits (80001 pages ... 80008): same shape, their own code.
for _code in (80001, 80002, 80003, 80005, 80006, 80007, 80008):
    RATE_LIMIT_MESSAGES[_code] = (
        f"(#{_code}) There have been too many calls for this business use case. Wait a bit "
        f"and try again. For more info, please refer to {RATE_LIMIT_URL}.",
        2446079,
    )


def rate_limited(code: int) -> GraphError:
    message, subcode = RATE_LIMIT_MESSAGES.get(code, RATE_LIMIT_MESSAGES[80000])
    return GraphError(400, code, message, subcode=subcode, is_transient=True)
