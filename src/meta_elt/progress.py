"""What the operator sees: progress on long runs, one-line messages, summary tables."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

from meta_elt.meltano_run import Progress


class Reporter:
    """A live progress line on a terminal; plain log lines (at most every few seconds) otherwise."""

    def __init__(self, stream: TextIO | None = None, plain_every: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.plain_every = plain_every
        self._last_plain = 0.0
        self._live = False

    def _write(self, text: str) -> None:
        if self._live:
            self.stream.write("\r\033[K")
            self._live = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def info(self, message: str) -> None:
        self._write(f"meta-elt: {message}")

    def error(self, message: str) -> None:
        self._write(f"meta-elt: error: {message}")

    def progress(self, progress: Progress) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + progress.line())
            self.stream.flush()
            self._live = True
        elif time.monotonic() - self._last_plain >= self.plain_every:
            self._last_plain = time.monotonic()
            self._write(f"meta-elt: progress: {progress.line()}")

    def done(self) -> None:
        if self._live:
            self.stream.write("\n")
            self._live = False

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        self._write("\n".join(lines))
