"""Run Meltano as a subprocess, follow its structured log, and report progress.

The tap logs one ``Window done: <stream> <account> <since>..<until>: <n> rows | windows k/N``
line per completed report window; Meltano relays it in its JSON log. Everything Meltano prints
goes to a log file (tokens redacted); the terminal gets a progress display (or plain lines when
not a terminal) and the telling error line when the run fails.
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

_WINDOW_DONE = re.compile(
    r"Window done: insights_(?P<report>\S+) (?P<account>\S+) "
    r"(?P<date_start>\d{4}-\d{2}-\d{2})\.\.(?P<date_stop>\d{4}-\d{2}-\d{2}): "
    r"(?P<rows>\d+) rows \| windows (?P<done>\d+)/(?P<total>\d+)"
)
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
    rows_by_level: dict[str, int] = field(default_factory=dict)
    first_date: str | None = None
    last_date: str | None = None
    started: float = field(default_factory=time.monotonic)
    first_window_at: float | None = None

    def update(self, event: dict) -> None:
        if self.first_window_at is None:
            self.first_window_at = time.monotonic()
        self.windows_done += 1
        total = event.get("windows_total")
        if isinstance(total, int):
            self.windows_total = total
        rows = int(event.get("rows") or 0)
        self.rows += rows
        level = str(event.get("level") or event.get("report") or "?")
        self.rows_by_level[level] = self.rows_by_level.get(level, 0) + rows
        since, until = event.get("date_start"), event.get("date_stop")
        if since and (self.first_date is None or since < self.first_date):
            self.first_date = since
        if until and (self.last_date is None or until > self.last_date):
            self.last_date = until

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
    """The tap's per-window progress line as a dict, or None."""
    match = _WINDOW_DONE.search(message)
    if match is None:
        return None
    event: dict[str, object] = match.groupdict()
    event["rows"] = int(match["rows"])
    event["windows_total"] = int(match["total"])
    return event


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
