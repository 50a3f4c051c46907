"""Helpers and fixtures: a Graph API sandbox and the tap run as a subprocess."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from meta_sandbox.testing import SandboxServer

TOKEN = "tok-SECRET-7f3a9c51e0"
ACCOUNT = "act_1001"
OTHER_ACCOUNT = "act_2002"  # exists, but TOKEN may not read it
TAP = Path(sys.executable).parent / "tap-meta-insights"
WORLD = {
    "seed": 11,
    "tokens": [{"token": TOKEN, "accounts": [ACCOUNT]}],
    "accounts": [
        {
            "id": ACCOUNT,
            "currency": "SEK",
            "timezone_name": "Europe/Stockholm",
            "history_days": 800,
            "campaigns": 3,
            "adsets_per_campaign": 2,
            "ads_per_adset": 2,
        },
        {"id": OTHER_ACCOUNT, "campaigns": 1, "adsets_per_campaign": 1, "ads_per_adset": 1},
    ],
}


def month_back(months: int) -> tuple[dt.date, dt.date]:
    """First and last day of the calendar month ``months`` before the current one."""
    first = dt.date.today().replace(day=1)
    for _ in range(months):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    last = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    return first, last


@dataclass
class TokenSocket:
    path: Path
    connections: int = 0


@contextlib.contextmanager
def serve_token(payload: bytes) -> Iterator[TokenSocket]:
    """A UNIX socket (as meta-elt serves one) that sends ``payload`` to each connection."""
    directory = Path(tempfile.mkdtemp(prefix="tap-token-"))  # short: AF_UNIX paths are limited
    path = directory / "token.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    server.settimeout(0.1)
    stop = threading.Event()
    served = TokenSocket(path)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                served.connections += 1
                conn.sendall(payload)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class TapRun:
    returncode: int
    messages: list[dict]
    stderr: str
    stdout: str = ""
    records: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    def of(self, stream: str) -> list[dict]:
        return self.records.get(stream, [])


def parse_messages(lines: list[str]) -> tuple[list[dict], dict[str, list[dict]]]:
    messages = [json.loads(line) for line in lines if line.strip()]
    records: dict[str, list[dict]] = {}
    for m in messages:
        if m["type"] == "RECORD":
            records.setdefault(m["stream"], []).append(m["record"])
    return messages, records


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(seed=11, world=WORLD, time_scale=0.001) as sb:
        yield sb


@pytest.fixture
def sb(sandbox: SandboxServer) -> Iterator[SandboxServer]:
    """The module's sandbox with clean faults and stats."""
    sandbox.clear_faults()
    sandbox.reset_stats()
    yield sandbox
    sandbox.clear_faults()


@pytest.fixture
def base_config(sb: SandboxServer) -> dict:
    since, until = month_back(2)
    return {
        "access_token": TOKEN,
        "account_ids": ACCOUNT.removeprefix("act_"),
        "start_date": since.isoformat(),
        "end_date": until.isoformat(),
        "api_url": sb.base_url,
        "poll_interval": 0.01,
        "max_retry_wait": 0.2,
        "tenant_id": "4f9d1c3e-5b6a-4c7d-8e9f-0a1b2c3d4e5f",
    }


@pytest.fixture
def run_tap(tmp_path: Path):
    """Run the tap CLI on a config (and state); asserts the token never leaks."""

    def _run(config: dict, state: dict | None = None, timeout: float = 120) -> TapRun:
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        args = [str(TAP), "--config", str(config_path)]
        if state is not None:
            state_path = tmp_path / "state.json"
            state_path.write_text(json.dumps(state))
            args += ["--state", str(state_path)]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        assert TOKEN not in proc.stdout
        assert TOKEN not in proc.stderr
        messages, records = parse_messages(proc.stdout.splitlines())
        return TapRun(proc.returncode, messages, proc.stderr, proc.stdout, records)

    return _run


def normalise_truth_actions(items: list[dict] | None) -> list[dict] | None:
    if not items:
        return None
    return [{k: (v if k == "action_type" else float(v)) for k, v in item.items()} for item in items]


def assert_equals_truth(
    sb: SandboxServer,
    records: list[dict],
    *,
    level: str,
    since: dt.date,
    until: dt.date,
    windows: tuple[str, ...] = ("1d_view", "7d_click", "28d_click"),
) -> None:
    """Every truth row arrives exactly once, with the same numbers."""
    truth = sb.truth(
        account=ACCOUNT,
        level=level,
        since=since.isoformat(),
        until=until.isoformat(),
        windows=windows,
    )
    id_field = f"{level}_id"
    keys = [(r["account_id"], r["date"], r[id_field]) for r in records]
    assert len(keys) == len(set(keys)), "duplicate keys"
    got = {(r["date"], r[id_field]): r for r in records}
    expected = {(t["date_start"], t[id_field]): t for t in truth}
    assert set(got) == set(expected)
    for key, want in expected.items():
        have = got[key]
        assert have["account_id"] == ACCOUNT
        assert have["level"] == level
        for metric in ("impressions", "reach", "clicks", "inline_link_clicks"):
            assert have[metric] == int(want[metric]), (key, metric)
        assert have["spend"] == pytest.approx(float(want["spend"]), abs=1e-9)
        for metric in ("actions", "action_values"):
            have_items = [
                {k: (v if k == "action_type" else float(v)) for k, v in item.items()}
                for item in have[metric] or []
            ] or None
            assert have_items == normalise_truth_actions(want.get(metric)), (key, metric)
