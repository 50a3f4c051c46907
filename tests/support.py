"""Helpers shared by the project's tests (fixtures are in conftest.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from meta_elt import meltano_run, postgres

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the project's ``meta-elt`` (output captured as text)."""
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "meta-elt"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def meltano(
    *args: str, server: postgres.Server, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """Run the project's Meltano with the server's PG* variables."""
    full_env = {
        **os.environ,
        **server.libpq_env(),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        **(env or {}),
    }
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "meltano"), *args],
        cwd=ROOT,
        env=full_env,
        input=stdin,
        capture_output=True,
        check=False,
    )


def windows_done(log_text: str) -> list[dict]:
    """The tap's per-window progress metrics in a meta-elt run log, in order (their tags)."""
    events = (meltano_run.progress_event(line) for line in log_text.splitlines())
    return [event for event in events if event is not None]
