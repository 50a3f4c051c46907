"""The tap against the Graph API sandbox: jobs, splitting, resume, errors, secrecy."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
from pathlib import Path

from meta_sandbox.testing import SandboxServer
from tap_helpers import (
    ACCOUNT,
    OTHER_ACCOUNT,
    TAP,
    TOKEN,
    WORLD,
    assert_equals_truth,
    month_back,
    parse_messages,
    serve_token,
)

LEVELS = ("ad", "adset", "campaign")


def _days(since: dt.date, until: dt.date) -> list[dt.date]:
    return [since + dt.timedelta(days=i) for i in range((until - since).days + 1)]


def test_one_month_is_one_job_per_level_and_equals_truth(sb, base_config, run_tap) -> None:
    run = run_tap(base_config)
    assert run.returncode == 0, run.stderr
    assert sb.stats()["jobs_created"] == 3
    since, until = (
        dt.date.fromisoformat(base_config["start_date"]),
        dt.date.fromisoformat(base_config["end_date"]),
    )
    for level in LEVELS:
        records = run.of(f"insights_{level}")
        assert_equals_truth(sb, records, level=level, since=since, until=until)
        assert {r["tenant_id"] for r in records} == {base_config["tenant_id"]}
        assert {r["report_name"] for r in records} == {level}
        assert {r["action_report_time"] for r in records} == {"mixed"}
        assert all(r["breakdowns"] == {} for r in records)
    windows = run.of("insights_windows")
    assert sorted((w["report_name"], w["date_start"], w["date_stop"]) for w in windows) == [
        (level, since.isoformat(), until.isoformat()) for level in LEVELS
    ]
    assert {w["rows"] for w in windows if w["report_name"] == "ad"} == {len(run.of("insights_ad"))}
    # Progress as Singer metrics on stderr, one per window (docs/CONTRACTS.md), rows included.
    metrics = [
        json.loads(line.split("METRIC: ", 1)[1])
        for line in run.stderr.splitlines()
        if "METRIC: " in line and '"window_count"' in line
    ]
    assert sorted(m["tags"]["stream"] for m in metrics) == [f"insights_{lv}" for lv in LEVELS]
    assert sorted(m["tags"]["windows_done"] for m in metrics) == [1, 2, 3]
    assert {m["tags"]["windows_total"] for m in metrics} == {3}
    assert {m["tags"]["rows"] for m in metrics if m["tags"]["stream"] == "insights_ad"} == {
        len(run.of("insights_ad"))
    }
    bookmarks = run.states[-1]["bookmarks"]
    for level in LEVELS:
        (partition,) = bookmarks[f"insights_{level}"]["partitions"]
        assert partition["context"] == {"account_id": ACCOUNT}
        assert partition["replication_key_value"] == until.isoformat()
    assert [a["account_id"] for a in run.of("accounts")] == [ACCOUNT]
    assert len(run.of("ads")) == 12 and len(run.of("campaigns")) == 3
    assert all(r["account_id"] == ACCOUNT and r["id"] for r in run.of("ads"))


NIL_TENANT = "00000000-0000-0000-0000-000000000000"
KEYS = {
    "insights_ad": ["tenant_id", "account_id", "date", "ad_id"],
    "insights_adset": ["tenant_id", "account_id", "date", "adset_id"],
    "insights_campaign": ["tenant_id", "account_id", "date", "campaign_id"],
    "insights_windows": ["tenant_id", "account_id", "report_name", "date_start", "date_stop"],
    "accounts": ["tenant_id", "account_id"],
    "campaigns": ["tenant_id", "id"],
    "adsets": ["tenant_id", "id"],
    "ads": ["tenant_id", "id"],
}


def test_every_key_starts_with_the_tenant_nil_uuid_by_default(sb, base_config, run_tap) -> None:
    config = {k: v for k, v in base_config.items() if k != "tenant_id"}
    run = run_tap(config)
    assert run.returncode == 0, run.stderr
    schemas = {m["stream"]: m for m in run.messages if m["type"] == "SCHEMA"}
    assert {name: schemas[name]["key_properties"] for name in KEYS} == KEYS
    for name, schema in schemas.items():
        kind = schema["schema"]["properties"]["tenant_id"]["type"]
        assert kind in ("string", ["string"]), name  # a key column: never null
    assert set(run.records) == set(KEYS)
    for name, records in run.records.items():
        assert records and {r["tenant_id"] for r in records} == {NIL_TENANT}, name


def test_access_token_from_a_unix_socket(sb, base_config, run_tap) -> None:
    config = {k: v for k, v in base_config.items() if k != "access_token"}
    config["reports"] = [{"name": "campaign", "level": "campaign"}]
    with serve_token(f"{TOKEN}\n".encode()) as served:
        run = run_tap({**config, "access_token_file": str(served.path)})
    assert run.returncode == 0, run.stderr
    assert served.connections == 1
    since, until = month_back(2)
    assert_equals_truth(sb, run.of("insights_campaign"), level="campaign", since=since, until=until)


def test_access_token_file_errors_are_one_line(sb, base_config, run_tap, tmp_path: Path) -> None:
    config = {k: v for k, v in base_config.items() if k != "access_token"}
    missing = tmp_path / "absent.sock"
    run = run_tap({**config, "access_token_file": str(missing)})
    assert run.returncode != 0
    assert any(
        f"access_token_file: cannot read {missing}: No such file" in line
        for line in run.stderr.splitlines()
    )
    both = run_tap({**base_config, "access_token_file": str(missing)})
    assert both.returncode != 0
    assert "set one of access_token or access_token_file" in both.stderr
    assert sb.stats()["jobs_created"] == 0


def test_discovery_needs_no_token(base_config, tmp_path: Path) -> None:
    config = {k: v for k, v in base_config.items() if k != "access_token"}
    config["access_token_file"] = str(tmp_path / "absent.sock")
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    proc = subprocess.run(
        [str(TAP), "--config", str(config_path), "--discover"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    streams = {s["tap_stream_id"]: s for s in json.loads(proc.stdout)["streams"]}
    assert streams["insights_ad"]["key_properties"] == KEYS["insights_ad"]
    assert streams["campaigns"]["key_properties"] == KEYS["campaigns"]


def test_year_in_quarters_is_four_jobs_per_level(sb, base_config, run_tap) -> None:
    year = dt.date.today().year - 1
    config = {
        **base_config,
        "start_date": f"{year}-01-01",
        "end_date": f"{year}-12-31",
        "chunk_months": 3,
        "max_concurrent_jobs": 3,
    }
    run = run_tap(config)
    assert run.returncode == 0, run.stderr
    assert sb.stats()["jobs_created"] == 12
    windows = sorted(
        (w["date_start"], w["date_stop"])
        for w in run.of("insights_windows")
        if w["report_name"] == "campaign"
    )
    assert windows == [
        (f"{year}-01-01", f"{year}-03-31"),
        (f"{year}-04-01", f"{year}-06-30"),
        (f"{year}-07-01", f"{year}-09-30"),
        (f"{year}-10-01", f"{year}-12-31"),
    ]
    assert_equals_truth(
        sb,
        run.of("insights_campaign"),
        level="campaign",
        since=dt.date(year, 1, 1),
        until=dt.date(year, 12, 31),
    )


def test_window_started_at_precedes_its_rows_and_follows_earlier_rows(
    sb, base_config, run_tap
) -> None:
    """Staging drops a row extracted before the latest window covering its day started: so each
    window's started_at must be at or before the time_extracted of every row of the window, and
    after every row the run wrote earlier for the same report (an earlier window)."""
    since, _ = month_back(2)
    _, until = month_back(1)
    run = run_tap({**base_config, "start_date": str(since), "end_date": str(until)})
    assert run.returncode == 0, run.stderr
    stamp = dt.datetime.fromisoformat
    for level in LEVELS:
        stream = f"insights_{level}"
        rows = [
            (m["record"]["date"], stamp(m["time_extracted"]))
            for m in run.messages
            if m["type"] == "RECORD" and m["stream"] == stream
        ]
        windows = sorted(
            (w for w in run.of("insights_windows") if w["report_name"] == level),
            key=lambda w: w["date_start"],
        )
        assert len(windows) == 2, windows  # two calendar months, one window each
        for window in windows:
            started = stamp(window["started_at"])
            assert started.tzinfo is not None
            assert started <= stamp(window["completed_at"])
            inside = [t for d, t in rows if window["date_start"] <= d <= window["date_stop"]]
            before = [t for d, t in rows if d < window["date_start"]]
            assert inside, window
            assert min(inside) >= started, (window, min(inside))
            if window is windows[1]:
                assert max(before) < started, "rows of the earlier window precede its start"

    since, until = month_back(2)
    mid = since + dt.timedelta(days=10)
    # Jobs over more than 4 days fail near mid-month (Job Failed), the 400 (1487534) and
    # 500 (code 1) flavours hit other days; one day needs splitting down to single campaigns.
    sb.add_fault(
        {"kind": "too_big", "account": ACCOUNT, "since": str(mid), "until": str(mid), "max_days": 4}
    )
    sb.add_fault(
        {
            "kind": "too_big",
            "account": ACCOUNT,
            "since": str(since + dt.timedelta(days=20)),
            "until": str(since + dt.timedelta(days=21)),
            "max_days": 2,
            "mode": "error_1487534",
        }
    )
    sb.add_fault(
        {
            "kind": "too_big",
            "account": ACCOUNT,
            "since": str(since + dt.timedelta(days=2)),
            "until": str(since + dt.timedelta(days=2)),
            "max_days": 3,
            "mode": "error_500",
        }
    )
    hard_day = since + dt.timedelta(days=15)
    sb.add_fault(
        {
            "kind": "too_big",
            "account": ACCOUNT,
            "since": str(hard_day),
            "until": str(hard_day),
            "max_days": 0,
        }
    )
    run = run_tap(base_config)
    assert run.returncode == 0, run.stderr
    assert sb.stats()["jobs_created"] > 3
    assert "split into" in run.stderr
    for level in LEVELS:
        assert_equals_truth(sb, run.of(f"insights_{level}"), level=level, since=since, until=until)
    # Still one insights_windows record per planned window, not per job.
    assert len(run.of("insights_windows")) == 3


def test_failed_jobs_are_retried_by_splitting(sb, base_config, run_tap) -> None:
    sb.add_fault({"kind": "fail_jobs", "account": ACCOUNT, "count": 2})
    run = run_tap({**base_config, "reports": [{"name": "ad", "level": "ad"}]})
    assert run.returncode == 0, run.stderr
    since, until = month_back(2)
    assert_equals_truth(sb, run.of("insights_ad"), level="ad", since=since, until=until)


def test_kill_9_mid_run_then_resume_has_no_gap_and_no_duplicate(tmp_path: Path) -> None:
    world = {**WORLD, "limits": {"job_base_seconds": 300.0}}  # 0.3 s per job at this scale
    since, _ = month_back(7)
    _, until = month_back(2)
    with SandboxServer(seed=11, world=world, time_scale=0.001) as sandbox:
        config = {
            "access_token": TOKEN,
            "account_ids": [ACCOUNT],
            "start_date": since.isoformat(),
            "end_date": until.isoformat(),
            "api_url": sandbox.base_url,
            "poll_interval": 0.01,
            "lookback_days": 0,
            "reports": [{"name": "ad", "level": "ad"}, {"name": "campaign", "level": "campaign"}],
        }
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        proc = subprocess.Popen(
            [str(TAP), "--config", str(config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        seen: list[str] = []
        bookmarks = 0
        for line in proc.stdout:
            seen.append(line)
            message = json.loads(line)
            if message["type"] == "STATE" and "insights_ad" in message["value"].get(
                "bookmarks", {}
            ):
                partitions = message["value"]["bookmarks"]["insights_ad"].get("partitions", [])
                if any(p.get("replication_key_value") for p in partitions):
                    bookmarks += 1
                    if bookmarks == 2:
                        break
        assert proc.poll() is None, "the tap finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        # What a target committed: everything up to the last STATE it read.
        last_state_at = max(i for i, line in enumerate(seen) if json.loads(line)["type"] == "STATE")
        first_messages, first = parse_messages(seen[: last_state_at + 1])
        state = first_messages[-1]["value"]
        assert (
            state["bookmarks"]["insights_ad"]["partitions"][0]["replication_key_value"]
            < until.isoformat()
        )

        state_path = tmp_path / "state.json"
        state_path.write_text(json.dumps(state))
        rerun = subprocess.run(
            [str(TAP), "--config", str(config_path), "--state", str(state_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert rerun.returncode == 0, rerun.stderr
        _, second = parse_messages(rerun.stdout.splitlines())
        for level in ("ad", "campaign"):
            union = first.get(f"insights_{level}", []) + second.get(f"insights_{level}", [])
            assert_equals_truth(sandbox, union, level=level, since=since, until=until)
            covered = sorted(
                day
                for w in first.get("insights_windows", []) + second.get("insights_windows", [])
                if w["report_name"] == level
                for day in _days(
                    dt.date.fromisoformat(w["date_start"]), dt.date.fromisoformat(w["date_stop"])
                )
            )
            assert covered == _days(since, until)


def test_incremental_run_restarts_lookback_days_before_the_bookmark(
    sb, base_config, run_tap
) -> None:
    config = {**base_config, "reports": [{"name": "ad", "level": "ad"}], "lookback_days": 3}
    first = run_tap(config)
    assert first.returncode == 0, first.stderr
    sb.reset_stats()
    second = run_tap(config, state=first.states[-1])
    assert second.returncode == 0, second.stderr
    until = dt.date.fromisoformat(base_config["end_date"])
    assert sb.stats()["jobs_created"] == 1
    assert {r["date"] for r in second.of("insights_ad")} == {
        (until - dt.timedelta(days=i)).isoformat() for i in range(3)
    }


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line or "ERROR " in line]


def test_invalid_token_fails_fast_with_one_line_telling_to_refresh(
    sb, base_config, run_tap
) -> None:
    run = run_tap({**base_config, "access_token": "tok-WRONG-0000"})
    assert run.returncode != 0
    assert "tok-WRONG-0000" not in run.stderr + run.stdout
    lines = [line for line in run.stderr.splitlines() if "refresh the access token" in line]
    assert len(lines) == 1 and "190" in lines[0]
    assert "Traceback" not in run.stderr
    assert sb.stats()["jobs_created"] == 0


def test_expired_token_mid_run_fails_with_refresh_message(sb, base_config, run_tap) -> None:
    sb.add_fault({"kind": "expire_token", "token": TOKEN})
    run = run_tap(base_config)
    assert run.returncode != 0
    assert any("refresh the access token" in line for line in run.stderr.splitlines())


def test_no_permission_names_the_account(sb, base_config, run_tap) -> None:
    run = run_tap({**base_config, "account_ids": [ACCOUNT, OTHER_ACCOUNT]})
    assert run.returncode != 0
    lines = [line for line in run.stderr.splitlines() if "No permission" in line]
    assert len(lines) == 1 and OTHER_ACCOUNT in lines[0] and "account_ids" in lines[0]


def test_revoked_account_code_10_is_a_permission_error(sb, base_config, run_tap) -> None:
    sb.add_fault({"kind": "revoke_account", "token": TOKEN, "account": ACCOUNT, "code": 10})
    run = run_tap(base_config)
    assert run.returncode != 0
    assert any("No permission" in line and ACCOUNT in line for line in run.stderr.splitlines())


def test_unknown_account_says_check_account_ids(sb, base_config, run_tap) -> None:
    run = run_tap({**base_config, "account_ids": "999999"})
    assert run.returncode != 0
    lines = [line for line in run.stderr.splitlines() if "does not exist" in line]
    assert len(lines) == 1 and "act_999999" in lines[0] and "account_ids" in lines[0]


def test_bad_parameter_names_it(sb, base_config, run_tap) -> None:
    reports = [{"name": "ad", "level": "ad", "fields": ["impressions", "spendz"]}]
    run = run_tap({**base_config, "reports": reports})
    assert run.returncode != 0
    lines = [line for line in run.stderr.splitlines() if "rejected parameter" in line]
    assert len(lines) == 1 and "spendz" in lines[0]
    bad_breakdown = [{"name": "geo", "level": "ad", "breakdowns": ["planet"]}]
    run = run_tap({**base_config, "reports": bad_breakdown})
    assert run.returncode != 0
    assert any(
        "rejected parameter 'breakdowns (planet)'" in line for line in run.stderr.splitlines()
    )


def test_rate_limit_is_retried_then_succeeds(sb, base_config, run_tap) -> None:
    # 12 s of refusals (nominal seconds x time scale) from now: past the tap's start-up even on a
    # loaded machine (make test runs three test workers on two cores).
    sb.add_fault({"kind": "rate_limit", "account": ACCOUNT, "seconds": 12000, "code": 80000})
    reports = [{"name": "ad", "level": "ad"}]
    run = run_tap({**base_config, "reports": reports, "max_retries": 100})
    assert run.returncode == 0, run.stderr
    assert "Rate limited" in run.stderr
    refused = sum(
        int(count)
        for by_status in sb.stats()["requests"].values()
        for status, count in by_status.items()
        if status == "400"
    )
    assert refused > 0
    since, until = month_back(2)
    assert_equals_truth(sb, run.of("insights_ad"), level="ad", since=since, until=until)


def test_transient_500s_are_retried(sb, base_config, run_tap) -> None:
    sb.add_fault({"kind": "http_500_every", "k": 3})
    run = run_tap({**base_config, "page_size": 50})
    assert run.returncode == 0, run.stderr
    errors = sum(
        int(count)
        for by_status in sb.stats()["requests"].values()
        for status, count in by_status.items()
        if status == "500"
    )
    assert errors > 0
    since, until = month_back(2)
    for level in LEVELS:
        assert_equals_truth(sb, run.of(f"insights_{level}"), level=level, since=since, until=until)


def test_breakdowns_are_keys_and_columns(sb, base_config, run_tap) -> None:
    reports = [{"name": "demo", "level": "campaign", "breakdowns": ["age", "gender"]}]
    run = run_tap({**base_config, "reports": reports})
    assert run.returncode == 0, run.stderr
    schema = next(
        m for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == "insights_demo"
    )
    assert schema["key_properties"] == [
        "tenant_id",
        "account_id",
        "date",
        "campaign_id",
        "age",
        "gender",
    ]
    records = run.of("insights_demo")
    since, until = month_back(2)
    truth = sb.truth(
        account=ACCOUNT,
        level="campaign",
        since=since.isoformat(),
        until=until.isoformat(),
        breakdowns=["age", "gender"],
    )
    assert len(records) == len(truth) > 0
    keys = {(r["date"], r["campaign_id"], r["age"], r["gender"]) for r in records}
    assert keys == {(t["date_start"], t["campaign_id"], t["age"], t["gender"]) for t in truth}
    assert all(r["breakdowns"] == {"age": r["age"], "gender": r["gender"]} for r in records)


def test_bad_config_is_one_line_naming_the_setting(base_config, run_tap) -> None:
    run = run_tap({**base_config, "start_date": "2026-02-30"})
    assert run.returncode != 0
    assert any("start_date:" in line and "YYYY-MM-DD" in line for line in run.stderr.splitlines())
    run = run_tap({**base_config, "tenant_id": "acme"})
    assert run.returncode != 0
    assert any("tenant_id:" in line and "UUID" in line for line in run.stderr.splitlines())


def test_account_level_report_with_other_windows(sb, base_config, run_tap) -> None:
    reports = [
        {
            "name": "acct",
            "level": "account",
            "action_attribution_windows": ["7d_click", "1d_view", "28d_view"],
            "action_report_time": "conversion",
        }
    ]
    run = run_tap({**base_config, "reports": reports})
    assert run.returncode == 0, run.stderr
    schema = next(
        m for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == "insights_acct"
    )
    assert schema["key_properties"] == ["tenant_id", "account_id", "date"]
    since, until = month_back(2)
    truth = sb.truth(
        account=ACCOUNT,
        level="account",
        since=since.isoformat(),
        until=until.isoformat(),
        windows=["7d_click", "1d_view", "28d_view"],
    )
    records = {r["date"]: r for r in run.of("insights_acct")}
    assert len(records) == len(run.of("insights_acct")) == len(truth)
    for row in truth:
        record = records[row["date_start"]]
        assert record["account_id"] == ACCOUNT and record["campaign_id"] is None
        assert record["action_report_time"] == "conversion"
        assert record["spend"] == float(row["spend"])
        purchases = [a for a in record["actions"] or [] if a["action_type"] == "purchase"]
        want = [a for a in row.get("actions") or [] if a["action_type"] == "purchase"]
        assert [sorted(a) for a in purchases] == [sorted(a) for a in want]
        assert [a["28d_view"] for a in purchases] == [int(a["28d_view"]) for a in want]


def test_defaults_keep_metas_queue_busy_without_a_throttling_error(run_tap) -> None:
    """At its default settings the tap grows the account's jobs in flight while Meta's throttle
    header leaves room: past the 4 jobs Meta runs at once (the next job waits in Meta's queue),
    never up to what the header refuses (the sandbox: 8 job slots of 12.5 %; the tap stops
    growing at 75 %, 6 jobs, or 7 when a reading comes while a job has ended at Meta and the
    tap has not polled it yet), and without a single refused call."""
    first, _ = month_back(8)
    _, last = month_back(1)
    with SandboxServer(seed=11, world=WORLD, time_scale=1.0) as sandbox:
        config = {
            "access_token": TOKEN,
            "account_ids": [ACCOUNT],
            "start_date": first.isoformat(),
            "end_date": last.isoformat(),
            "api_url": sandbox.base_url,
            "reports": [{"name": "campaign", "level": "campaign"}],
        }
        run = run_tap(config)
        assert run.returncode == 0, run.stderr
        stats = sandbox.stats()
    assert stats["jobs_created"] == 8
    assert stats["throttled_total"] == 0
    assert 4 < stats["per_account"][ACCOUNT]["peak_unfinished_jobs"] < 8
