"""`meta-sandbox serve` as a subprocess."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

EXE = Path(sys.executable).with_name("meta-sandbox")


def serve(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [str(EXE), "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    match = re.match(r"meta-sandbox listening on (http://127\.0\.0\.1:\d+) \(seed (\d+)", line)
    assert match, line + proc.stderr.read()
    return proc, match.group(1)


def test_serve_prints_url_and_stops_on_sigterm():
    proc, url = serve("--seed", "5", "--time-scale", "0.01")
    try:
        world = requests.get(f"{url}/__sandbox/world", timeout=10).json()
        assert world["seed"] == 5 and world["time_scale"] == 0.01
        acct = world["accounts"][0]["id"]
        token = world["tokens"][0]["token"]
        resp = requests.get(f"{url}/v19.0/{acct}", params={"access_token": token}, timeout=10)
        assert resp.json()["id"] == acct
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_serve_world_file_and_sigint(tmp_path):
    spec = {
        "seed": 11,
        "now": "2026-03-01T08:00:00Z",
        "tokens": [{"token": "t1", "accounts": ["act_42"]}],
        "accounts": [{"id": "act_42", "name": "Ünïcode AB", "currency": "EUR", "campaigns": 1}],
    }
    path = tmp_path / "world.yaml"
    import yaml

    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    proc, url = serve("--world", str(path))
    try:
        world = requests.get(f"{url}/__sandbox/world", timeout=10).json()
        assert world["seed"] == 11 and world["now"] == "2026-03-01T08:00:00Z"
        assert world["accounts"][0]["name"] == "Ünïcode AB"
        assert json.dumps(world["tokens"]) == json.dumps([{"token": "t1", "accounts": ["act_42"]}])
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
