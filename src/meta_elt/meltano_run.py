"""Run Meltano as a subprocess, follow its structured log, and report progress.

The tap reports each completed report window as a Singer metric, a ``METRIC: {"metric":
"window_count", ...}`` line (docs/CONTRACTS.md); Meltano relays it in its JSON log. Everything
Meltano prints goes to a log file (tokens redacted); the terminal gets a progress display (or
plain lines when not a terminal) and the telling error line when the run fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from meta_elt import children, env_file

#: The tap's progress metric (tap_meta_insights/progress.py).
WINDOW_METRIC = "window_count"
_METRIC = "METRIC: "
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SECRETS = re.compile(r"(access_token=|Bearer |OAuth )[^\s&\"']+")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def redact(text: str) -> str:
    """Remove anything that looks like a token from a line before it is shown or stored."""
    return _SECRETS.sub(r"\1***", text)


@dataclass
class Progress:
    """What the tap reported so far in one run."""

    windows_done: int = 0
    windows_total: int | None = None
    rows: int = 0
    started: float = field(default_factory=time.monotonic)
    first_window_at: float | None = None

    def update(self, tags: dict) -> None:
        """Count one completed window (the tags of the tap's ``window_count`` metric)."""
        if self.first_window_at is None:
            self.first_window_at = time.monotonic()
        self.windows_done += 1
        total = tags.get("windows_total")
        if isinstance(total, int):
            self.windows_total = total
        self.rows += int(tags.get("rows") or 0)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def eta_seconds(self) -> float | None:
        """Remaining windows at the pace since the first one (start-up time excluded)."""
        if not self.windows_total or self.windows_done < 2 or self.first_window_at is None:
            return None
        pace = (time.monotonic() - self.first_window_at) / (self.windows_done - 1)
        return pace * max(self.windows_total - self.windows_done, 0)

    def line(self) -> str:
        total = f"/{self.windows_total}" if self.windows_total else ""
        eta = self.eta_seconds()
        eta_text = f", ETA {clock(eta)}" if eta is not None else ""
        return (
            f"windows {self.windows_done}{total}, rows {self.rows:,}, "
            f"elapsed {clock(self.elapsed())}{eta_text}"
        )


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _message(line: str) -> str:
    """The human text of one line of Meltano's JSON log (or the line itself)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return line.rstrip("\n")
    if isinstance(record, dict):
        return str(record.get("event", line)).rstrip("\n")
    return line.rstrip("\n")


def progress_event(message: str) -> dict | None:
    """The tags of the tap's per-window progress metric in one log line, or None."""
    at = message.find(_METRIC)
    if at < 0 or WINDOW_METRIC not in message:
        return None
    try:
        point = json.loads(message[at + len(_METRIC) :])
    except json.JSONDecodeError:
        return None
    if not isinstance(point, dict) or point.get("metric") != WINDOW_METRIC:
        return None
    tags = point.get("tags")
    return tags if isinstance(tags, dict) else None


@dataclass
class RunOutcome:
    returncode: int
    progress: Progress
    tail: list[str]
    log_path: Path


def command(root: Path, env: dict[str, str]) -> list[str]:
    """The project's ``meltano``, told not to read `.env` again (see env_file)."""
    meltano = env.get("META_ELT_MELTANO") or str(root / ".venv" / "bin" / "meltano")
    return [meltano, *env_file.MELTANO_ENV_FILE_ARGS]


def run(
    meltano_args: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    on_progress: Callable[[Progress], None] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Run ``meltano --log-format=json <args>``; stream its log to ``log_path``; tell
    ``on_progress`` of each window the tap completes and ``on_line`` of each line."""
    progress = Progress()
    tail: deque[str] = deque(maxlen=40)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        log_path.open("w", encoding="utf-8") as log_file,
        children.guarded(
            [*command(cwd, env), "--log-format=json", *meltano_args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            umask=0o077,  # whatever Meltano and its plugins write is private to this user
        ) as proc,
    ):
        assert proc.stdout is not None
        for raw in proc.stdout:
            message = redact(_message(raw))
            log_file.write(message + "\n")
            log_file.flush()
            tail.append(message)
            if on_line:
                on_line(message)
            event = progress_event(message)
            if event is not None:
                progress.update(event)
                if on_progress:
                    on_progress(progress)
        returncode = proc.wait()
    return RunOutcome(returncode, progress, list(tail), log_path)
