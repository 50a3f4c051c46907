"""Helpers shared by the project's tests (fixtures are in conftest.py)."""

from __future__ import annotations

import atexit
import functools
import json
import os
import subprocess
from pathlib import Path

from meta_elt import meltano_run, postgres

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
DBT_VENV = ROOT / ".meltano" / "utilities" / "dbt-postgres" / "venv"


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


class DbtWorker:
    """Client of tests/dbt_worker.py: one dbt process (Meltano's dbt-postgres venv) running a
    test process's dbt commands one after another, as `dbt <args>` would (output, exit code)."""

    ANSWER = "\x1edbt-worker-answer "  # tests/dbt_worker.py ANSWER

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None

    def run(
        self, args: list[str], env: dict[str, str], *, reuse_manifest: bool = False
    ) -> subprocess.CompletedProcess[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [str(DBT_VENV / "bin" / "python"), str(ROOT / "tests" / "dbt_worker.py")],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        request = {"args": args, "env": env, "reuse_manifest": reuse_manifest}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        output: list[str] = []
        for line in self._proc.stdout:
            if line.startswith(self.ANSWER):
                code = int(json.loads(line[len(self.ANSWER) :]))
                return subprocess.CompletedProcess(["dbt", *args], code, "".join(output), "")
            output.append(line)
        return subprocess.CompletedProcess(["dbt", *args], 2, "".join(output), "the worker died")

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc.wait(timeout=60)


@functools.cache
def dbt_worker() -> DbtWorker:
    """This test process's dbt worker, stopped when the process ends."""
    worker = DbtWorker()
    atexit.register(worker.close)
    return worker
