"""What the operator sees: progress on long runs, one-line messages, summary tables.

Long steps (an extract and load, a dbt build) run inside ``Reporter.activity``: on a terminal a
live line, refreshed every second; otherwise one line every 10 seconds (``plain_every``), so a log
shows the run is alive even while Meta's jobs are queued or dbt is building.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TextIO

from meta_elt.meltano_run import Progress, clock

#: dbt's own count of the nodes it has run ("12 of 88 OK created sql view model ...").
_DBT_NODE = re.compile(r"\b(\d+) of (\d+) (?:OK|PASS|WARN|ERROR|FAIL|SKIP|NO-OP)\b")


class Activity:
    """One long step: what it reports (the tap's windows, dbt's node count) and since when."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self.progress: Progress | None = None
        self.dbt_nodes: str | None = None

    def update(self, progress: Progress) -> None:
        """``on_progress`` of meltano_run.run: the tap finished a window."""
        self.progress = progress

    def line_seen(self, message: str) -> None:
        """``on_line`` of meltano_run.run: follow dbt's node count."""
        match = _DBT_NODE.search(message)
        if match:
            self.dbt_nodes = f"{match[1]} of {match[2]} dbt nodes done"

    def status(self) -> str:
        if self.progress is not None and self.progress.windows_done:
            return self.progress.line()
        done = f"{self.dbt_nodes}, " if self.dbt_nodes else ""
        return f"{done}elapsed {clock(time.monotonic() - self.started)}"


class Reporter:
    """A live progress line on a terminal; plain log lines (every ``plain_every`` s) otherwise."""

    def __init__(self, stream: TextIO | None = None, plain_every: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.plain_every = plain_every
        self._live = False
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self._lock:
            if self._live:
                self.stream.write("\r\033[K")
                self._live = False
            self.stream.write(text + "\n")
            self.stream.flush()

    def _live_line(self, text: str) -> None:
        with self._lock:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            self._live = True

    def info(self, message: str) -> None:
        self._write(f"meta-elt: {message}")

    def error(self, message: str) -> None:
        self._write(f"meta-elt: error: {message}")

    @contextlib.contextmanager
    def activity(self, label: str) -> Iterator[Activity]:
        """Report ``label``'s progress until the block ends (see the module docstring)."""
        step = Activity(label)
        stop = threading.Event()

        def tick() -> None:
            every = 1.0 if self.tty else self.plain_every
            while not stop.wait(every):
                if self.tty:
                    self._live_line(f"{label}: {step.status()}")
                else:
                    self._write(f"meta-elt: progress: {label}: {step.status()}")

        ticker = threading.Thread(target=tick, name=f"progress {label}", daemon=True)
        ticker.start()
        try:
            yield step
        finally:
            stop.set()
            ticker.join()
            self.done()

    def done(self) -> None:
        with self._lock:
            if self._live:
                self.stream.write("\n")
                self.stream.flush()
                self._live = False

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        self._write("\n".join(lines))
