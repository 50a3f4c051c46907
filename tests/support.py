"""Helpers shared by the project's tests (fixtures are in conftest.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from meta_elt import postgres

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


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
