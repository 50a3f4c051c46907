"""Unit tests: planning, splitting, bookmarks, settings, errors, records (no network)."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
from tap_helpers import serve_token
from tap_meta_insights.errors import (
    ErrorKind,
    GraphError,
    SettingError,
    classify,
    fatal_message,
    redact,
)
from tap_meta_insights.list_setting import parse_list_setting
from tap_meta_insights.planning import (
    ContiguousProgress,
    DateRange,
    incremental_start,
    plan_windows,
)
from tap_meta_insights.records import build_record, key_properties, record_key
from tap_meta_insights.reports import ReportSpec
from tap_meta_insights.settings import DEFAULT_TENANT_ID, normalise_account_id, parse_settings

D = dt.date.fromisoformat
TODAY = D("2026-11-28")
BASE = {"access_token": "tok", "account_ids": ["act_1"], "start_date": "2026-01-01"}


# -- window planning -----------------------------------------------------------------------
def test_plan_windows_example_from_the_brief() -> None:
    windows = plan_windows(D("2024-01-15"), D("2024-03-10"), 1)
    assert [(str(w.since), str(w.until)) for w in windows] == [
        ("2024-01-15", "2024-01-31"),
        ("2024-02-01", "2024-02-29"),
        ("2024-03-01", "2024-03-10"),
    ]


@pytest.mark.parametrize("months", [1, 2, 3, 6, 12])
def test_plan_windows_cover_every_day_once_and_stop_at_end(months: int) -> None:
    start, end = D("2023-11-17"), D("2026-02-03")
    windows = plan_windows(start, end, months)
    days = [w.since + dt.timedelta(days=i) for w in windows for i in range(w.days)]
    assert days == [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    assert all(w.since.day == 1 for w in windows[1:])
    assert all((w.until + dt.timedelta(days=1)).day == 1 for w in windows[:-1])


def test_plan_windows_year_in_quarters_and_empty_range() -> None:
    assert len(plan_windows(D("2025-01-01"), D("2025-12-31"), 3)) == 4
    assert plan_windows(D("2025-02-01"), D("2025-01-31"), 1) == []
    assert plan_windows(D("2025-01-31"), D("2025-01-31"), 1) == [
        DateRange(D("2025-01-31"), D("2025-01-31"))
    ]


def test_halves_split_down_to_days_without_overlap() -> None:
    span = DateRange(D("2024-02-01"), D("2024-02-29"))
    first, second = span.halves()
    assert (first.since, first.until, second.since, second.until) == (
        D("2024-02-01"),
        D("2024-02-15"),
        D("2024-02-16"),
        D("2024-02-29"),
    )
    a, b = DateRange(D("2024-02-01"), D("2024-02-02")).halves()
    assert a.days == b.days == 1
    with pytest.raises(ValueError, match="one-day"):
        a.halves()


# -- incremental start and bookmark contiguity ---------------------------------------------
def test_incremental_start_lookback_and_clamps() -> None:
    start = D("2026-01-01")
    assert (
        incremental_start(start_date=start, bookmark=None, lookback_days=28, today=TODAY) == start
    )
    assert incremental_start(
        start_date=start, bookmark=D("2026-11-20"), lookback_days=28, today=TODAY
    ) == D("2026-10-24")
    assert incremental_start(
        start_date=start, bookmark=D("2026-11-20"), lookback_days=0, today=TODAY
    ) == D("2026-11-21")
    assert (
        incremental_start(start_date=start, bookmark=D("2026-01-10"), lookback_days=28, today=TODAY)
        == start
    )
    # never beyond Meta's 37 months, whatever the config says
    assert incremental_start(
        start_date=D("2020-01-01"), bookmark=None, lookback_days=28, today=TODAY
    ) == D("2023-10-29")


def test_bookmark_moves_only_across_contiguous_prefix() -> None:
    windows = plan_windows(D("2024-01-01"), D("2024-04-30"), 1)
    progress = ContiguousProgress(windows)
    assert progress.complete(windows[1]) is None  # February done, January not yet
    assert progress.complete(windows[3]) is None
    assert progress.bookmark is None
    assert progress.complete(windows[0]) == D("2024-02-29")
    assert progress.complete(windows[2]) == D("2024-04-30")
    with pytest.raises(ValueError, match="not planned"):
        progress.complete(DateRange(D("2025-01-01"), D("2025-01-02")))


def test_bookmark_never_moves_backwards_on_lookback() -> None:
    windows = plan_windows(D("2024-03-01"), D("2024-04-30"), 1)
    progress = ContiguousProgress(windows, bookmark=D("2024-04-15"))
    assert progress.complete(windows[0]) is None
    assert progress.bookmark == D("2024-04-15")
    assert progress.complete(windows[1]) == D("2024-04-30")


# -- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [("123", "act_123"), ("act_123", "act_123"), (" act_42 ", "act_42"), (987, "act_987")],
)
def test_account_ids_are_normalised(raw: object, expected: str) -> None:
    assert normalise_account_id(raw) == expected


@pytest.mark.parametrize("raw", ["act_", "abc", "act_12a", "12 34", ""])
def test_bad_account_id_names_the_setting(raw: str) -> None:
    with pytest.raises(SettingError, match=r"^account_ids: .*act_<digits>"):
        normalise_account_id(raw)


@pytest.mark.parametrize(
    "value", [["act_1", "2"], "act_1,2", "act_1, 2", '["act_1", "2"]', ' ["act_1","2"] ']
)
def test_account_ids_accept_lists_csv_and_json(value: object) -> None:
    settings = parse_settings({**BASE, "account_ids": value}, today=TODAY)
    assert settings.account_ids == ("act_1", "act_2")


def test_list_setting_rejects_bad_json() -> None:
    with pytest.raises(SettingError, match=r"^account_ids: not valid JSON"):
        parse_list_setting("account_ids", "[act_1")


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ({"start_date": "2026-13-01"}, "start_date"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2026-02-30"}, "end_date"),
        ({"start_date": "2026-03-01", "end_date": "2026-02-01"}, "start_date"),
        ({"start_date": "2022-01-01"}, "start_date"),
        ({"account_ids": "act_1,bogus"}, "account_ids"),
        ({"tenant_id": "not-a-uuid"}, "tenant_id"),
        ({"access_token": ""}, "access_token"),
        ({"access_token": "tok\nX"}, "access_token"),
        ({"start_date": None}, "start_date"),
        ({"chunk_months": 0}, "chunk_months"),
        ({"api_version": "23"}, "api_version"),
        ({"reports": [{"name": "x", "level": "creative"}]}, "reports[x].level"),
        ({"reports": [{"name": "Bad Name", "level": "ad"}]}, "reports[0].name"),
        ({"reports": [{"name": "a", "level": "ad"}, {"name": "a", "level": "ad"}]}, "reports"),
        (
            {"reports": [{"name": "a", "level": "ad", "action_attribution_windows": ["2d_x"]}]},
            "reports[a].action_attribution_windows",
        ),
    ],
)
def test_bad_settings_give_one_line_errors_naming_the_setting(override: dict, setting: str) -> None:
    with pytest.raises(SettingError) as info:
        parse_settings({**BASE, **override}, today=TODAY)
    message = str(info.value)
    assert message.startswith(f"{setting}:")
    assert "\n" not in message


def test_settings_defaults_and_tenant() -> None:
    tenant = "4F9D1C3E-0000-4000-8000-000000000001"
    settings = parse_settings({**BASE, "tenant_id": tenant}, today=TODAY)
    assert settings.tenant_id == tenant.lower()
    assert [r.name for r in settings.reports] == ["ad", "adset", "campaign"]
    assert [r.level for r in settings.reports] == ["ad", "adset", "campaign"]
    ad = settings.reports[0]
    assert ad.action_attribution_windows == ("1d_view", "7d_click", "28d_click")
    assert ad.action_report_time == "mixed"
    assert {"impressions", "spend", "actions", "action_values", "ad_id"} <= set(ad.fields)
    assert (settings.chunk_months, settings.max_concurrent_jobs, settings.lookback_days) == (
        1,
        8,
        28,
    )
    assert settings.poll_interval == 5
    assert settings.graph_url == "https://graph.facebook.com/v23.0"


@pytest.mark.parametrize("tenant", [None, ""])
def test_tenant_defaults_to_the_nil_uuid(tenant: str | None) -> None:
    settings = parse_settings({**BASE, "tenant_id": tenant}, today=TODAY)
    assert settings.tenant_id == DEFAULT_TENANT_ID == "00000000-0000-0000-0000-000000000000"
    assert parse_settings(BASE, today=TODAY).tenant_id == DEFAULT_TENANT_ID


def test_tenant_default_is_declared_in_the_config_schema() -> None:
    from tap_meta_insights.settings import CONFIG_SCHEMA

    assert CONFIG_SCHEMA["properties"]["tenant_id"]["default"] == DEFAULT_TENANT_ID
    assert "access_token_file" in CONFIG_SCHEMA["properties"]
    assert not CONFIG_SCHEMA["properties"]["access_token_file"].get("secret")


# -- access_token_file ---------------------------------------------------------------------
SECRET = "EAAB-file-secret-31337"
NO_TOKEN = {k: v for k, v in BASE.items() if k != "access_token"}


def _token_error(config: dict) -> str:
    with pytest.raises(SettingError) as info:
        parse_settings(config, today=TODAY)
    message = str(info.value)
    assert "\n" not in message and SECRET not in message
    return message


def test_access_token_file_reads_a_regular_file_stripped(tmp_path: Path) -> None:
    path = tmp_path / "meta_token"
    path.write_text(f"  {SECRET}\n")
    settings = parse_settings({**NO_TOKEN, "access_token_file": str(path)}, today=TODAY)
    assert settings.access_token == SECRET
    assert SECRET not in repr(settings)


def test_access_token_file_reads_a_unix_socket_until_eof() -> None:
    with serve_token(f"{SECRET}\n".encode()) as served:
        settings = parse_settings({**NO_TOKEN, "access_token_file": str(served.path)}, today=TODAY)
    assert settings.access_token == SECRET


def test_the_tap_reads_the_socket_once_and_discovery_not_at_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tap_meta_insights.tap import TapMetaInsights

    monkeypatch.setattr(TapMetaInsights, "_setup_signal_handlers", lambda self: None)

    with serve_token(SECRET.encode()) as served:
        config = {
            **NO_TOKEN,
            "access_token_file": str(served.path),
            "start_date": dt.date.today().replace(day=1).isoformat(),
        }
        tap = TapMetaInsights(config=dict(config))
        assert tap.settings.access_token == SECRET
        assert "insights_ad" in tap.streams  # building the streams does not read it again
        assert served.connections == 1
        discovery = TapMetaInsights(config=dict(config), validate_config=False)
        assert discovery.settings.account_ids == ("act_1",)
        assert discovery.catalog_dict["streams"]
        assert served.connections == 1


def test_access_token_file_missing_path_names_setting_path_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    message = _token_error({**NO_TOKEN, "access_token_file": str(path)})
    assert message.startswith(f"access_token_file: cannot read {path}: No such file")


def test_access_token_file_refused_socket(tmp_path: Path) -> None:
    with serve_token(b"") as served:  # a socket nobody listens on: refused
        stale = served.path.with_name("stale.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(str(stale))
        message = _token_error({**NO_TOKEN, "access_token_file": str(stale)})
    assert message.startswith(f"access_token_file: cannot read {stale}: Connection refused")


def test_access_token_file_that_is_a_directory(tmp_path: Path) -> None:
    message = _token_error({**NO_TOKEN, "access_token_file": str(tmp_path)})
    assert message.startswith(f"access_token_file: cannot read {tmp_path}: Is a directory;")


def test_access_token_file_empty_file_and_empty_socket(tmp_path: Path) -> None:
    path = tmp_path / "meta_token"
    path.write_text(" \n")
    message = _token_error({**NO_TOKEN, "access_token_file": str(path)})
    assert message.startswith(f"access_token_file: {path} holds no token")
    with serve_token(b"\n") as served:
        message = _token_error({**NO_TOKEN, "access_token_file": str(served.path)})
    assert message.startswith(f"access_token_file: {served.path} holds no token")


def test_access_token_file_with_more_than_the_token_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "meta_token"
    path.write_text(f"TOKEN={SECRET}\nOTHER=1\n")
    message = _token_error({**NO_TOKEN, "access_token_file": str(path)})
    assert message.startswith("access_token_file: the token contains whitespace")


def test_access_token_and_access_token_file_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "meta_token"
    path.write_text(SECRET)
    message = _token_error({**BASE, "access_token_file": str(path)})
    assert "set one of access_token or access_token_file" in message
    assert message.startswith("access_token:")


def test_access_token_file_is_not_read_without_credentials(tmp_path: Path) -> None:
    # Discovery parses settings leniently and needs no token: a missing file is no error.
    config = {**NO_TOKEN, "access_token_file": str(tmp_path / "absent")}
    settings = parse_settings(config, today=TODAY, require_credentials=False)
    assert settings.access_token == ""


def test_reports_accept_a_json_string() -> None:
    settings = parse_settings(
        {**BASE, "reports": '[{"name": "geo", "level": "campaign", "breakdowns": "country"}]'},
        today=TODAY,
    )
    (report,) = settings.reports
    assert (report.stream_name, report.breakdowns) == ("insights_geo", ("country",))
    assert report.request_fields[-2:] == ("campaign_id", "campaign_name") or "campaign_id" in (
        report.request_fields
    )


def test_request_fields_drop_objects_below_the_level() -> None:
    report = ReportSpec("c", "campaign", ("spend", "ad_id", "adset_name", "campaign_name"))
    assert "ad_id" not in report.request_fields
    assert "adset_name" not in report.request_fields
    assert {"campaign_id", "account_id", "spend"} <= set(report.request_fields)


# -- errors --------------------------------------------------------------------------------
def _err(
    status: int, code: int | None, message: str = "", subcode: int | None = None, **kw
) -> GraphError:
    body = {"error": {"code": code, "message": message, "error_subcode": subcode, **kw}}
    return GraphError.from_response(status, body)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_err(400, 190, "Invalid OAuth access token"), ErrorKind.TOKEN),
        (_err(401, 190, "Session has expired", 463), ErrorKind.TOKEN),
        (_err(403, 200, "(#200) no ads_read", 1815066), ErrorKind.PERMISSION),
        (_err(400, 10, "(#10) Application does not have permission"), ErrorKind.PERMISSION),
        (_err(400, 100, "Object with ID 'act_9' does not exist", 33), ErrorKind.UNKNOWN_ACCOUNT),
        (_err(400, 100, "(#100) breakdowns[0] must be one of"), ErrorKind.BAD_PARAMETER),
        (
            _err(400, 100, "(#100) Please reduce the amount of data", 1487534),
            ErrorKind.TOO_MUCH_DATA,
        ),
        (
            _err(500, 1, "Please reduce the amount of data you're asking for", 99),
            ErrorKind.TOO_MUCH_DATA,
        ),
        (_err(500, 1, "An unknown error occurred", 99), ErrorKind.TRANSIENT),
        (_err(500, 2, "An unexpected error has occurred"), ErrorKind.TRANSIENT),
        (
            _err(400, 2601, "(#2601) Error accessing adreport job.", 1815107, is_transient=True),
            ErrorKind.TRANSIENT,
        ),
        (
            _err(400, 2601, "(#2601) Error accessing adreport job.", 1815107, is_transient=False),
            ErrorKind.JOB_FAILED,
        ),
        (_err(400, 3018, "(#3018) start date beyond 37 months"), ErrorKind.DATE_LIMIT),
        (_err(502, None), ErrorKind.TRANSIENT),
        (GraphError.from_response(503, None), ErrorKind.TRANSIENT),
        (_err(400, 12345, "weird", is_transient=True), ErrorKind.TRANSIENT),
        (_err(400, 12345, "weird"), ErrorKind.OTHER),
    ]
    + [
        (_err(400, code, "limit"), ErrorKind.RATE_LIMIT)
        for code in (4, 17, 32, 613, 80000, 80004, 80008)
    ],
)
def test_error_classification(error: GraphError, kind: ErrorKind) -> None:
    assert classify(error) is kind


def test_fatal_messages_are_one_actionable_line() -> None:
    token = fatal_message(
        _err(400, 190, "Invalid OAuth access token"), ErrorKind.TOKEN, account=None, what="x"
    )
    assert "refresh the access token" in token
    perm = fatal_message(
        _err(403, 200, "(#200) nope"), ErrorKind.PERMISSION, account="act_5", what="x"
    )
    assert "act_5" in perm and "permission" in perm.lower()
    param = fatal_message(
        _err(400, 100, "(#100) breakdowns[0] must be one of the following values: age"),
        ErrorKind.BAD_PARAMETER,
        account="act_5",
        what="starting a job",
    )
    assert "'breakdowns'" in param
    field = fatal_message(
        _err(
            400, 100, "(#100) Tried accessing nonexisting field (spendz) on node type (AdsInsights)"
        ),
        ErrorKind.BAD_PARAMETER,
        account="act_5",
        what="starting a job",
    )
    assert "spendz" in field
    unknown = fatal_message(
        _err(400, 100, "does not exist", 33), ErrorKind.UNKNOWN_ACCOUNT, account="act_9", what="x"
    )
    assert "act_9" in unknown and "account_ids" in unknown
    assert all("\n" not in m for m in (token, perm, param, field, unknown))


def test_redact_removes_tokens_everywhere() -> None:
    text = (
        "GET https://g/v23.0/1/insights?after=x&access_token=EAAB123secret&limit=5 "
        "Bearer EAAB123secret"
    )
    cleaned = redact(text, ("EAAB123secret",))
    assert "EAAB123secret" not in cleaned
    assert "access_token=REDACTED" in cleaned and "after=x" in cleaned


# -- records -------------------------------------------------------------------------------
def test_record_types_keys_and_actions() -> None:
    report = ReportSpec(
        "geo",
        "adset",
        ("impressions", "spend", "ctr", "actions", "account_name", "adset_id"),
        breakdowns=("country",),
        action_attribution_windows=("1d_view", "7d_click"),
    )
    row = {
        "account_id": "1",
        "adset_id": "77",
        "campaign_id": "7",
        "date_start": "2024-01-02",
        "date_stop": "2024-01-02",
        "impressions": "1200",
        "spend": "12.34",
        "ctr": "1.5",
        "country": "SE",
        "actions": [{"action_type": "purchase", "value": "3", "1d_view": "1", "7d_click": "2"}],
    }
    record = build_record(row, report, account_id="act_1", tenant_id=DEFAULT_TENANT_ID)
    assert record["impressions"] == 1200 and record["spend"] == 12.34 and record["ctr"] == 1.5
    assert record["account_id"] == "act_1" and record["date"] == "2024-01-02"
    assert record["breakdowns"] == {"country": "SE"} and record["country"] == "SE"
    assert record["actions"] == [
        {"action_type": "purchase", "value": 3, "1d_view": 1, "7d_click": 2}
    ]
    assert record["ad_id"] is None and record["adset_id"] == "77"
    assert record["attribution_windows"] == ["1d_view", "7d_click"]
    assert record["tenant_id"] == DEFAULT_TENANT_ID
    assert key_properties(report) == ["tenant_id", "account_id", "date", "adset_id", "country"]
    assert record_key(record, report) == (DEFAULT_TENANT_ID, "act_1", "2024-01-02", "77", "SE")


def test_account_level_key_has_no_object_id() -> None:
    report = ReportSpec("acct", "account", ("spend",))
    assert key_properties(report) == ["tenant_id", "account_id", "date"]
    record = build_record(
        {"date_start": "2024-01-02", "spend": "0"}, report, account_id="act_1", tenant_id="t"
    )
    assert record["spend"] == 0 and record["tenant_id"] == "t"
