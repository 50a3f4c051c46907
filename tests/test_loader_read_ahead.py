"""The loader reads its input ahead on a thread of its own: the tap writes on while a drain runs.

Before, the loader read the pipe on the thread that loads: during a drain the pipe filled (64 KiB)
and the tap blocked on its next write, so extraction stopped while loading ran (tap | target took
1.37x the tap alone on the loader benchmark, bench/README.md). Run in the loader's own Python,
as the plugin is installed.
"""

from __future__ import annotations

import subprocess

from tests.test_loader_copy import LOADER

#: The consumer takes one line, then stops as a drain would; a writer must still get 8 MB into
#: the pipe (128 times the pipe's default buffer), and the consumer then sees every line in order.
WRITER_NOT_BLOCKED = """
import os, threading
from target_postgres_window_state import read_ahead

LINES = 200_000
read_end, write_end = os.pipe()
source = os.fdopen(read_end, "r")
sink = os.fdopen(write_end, "w")
done = threading.Event()

def write():
    for n in range(LINES):
        sink.write(f"{n:040d}\\n")
    sink.flush()
    done.set()
    sink.close()

sink.write("first\\n"); sink.flush()
got = read_ahead.lines(source)
assert next(got) == "first\\n"
threading.Thread(target=write, daemon=True).start()
assert done.wait(60), "the writer blocked while the consumer was busy"
rest = list(got)
assert rest == [f"{n:040d}\\n" for n in range(LINES)], "lines lost or out of order"
print("ok")
"""

#: A read error on the reader's thread is raised on the consumer's, after the lines before it.
READ_ERROR_RAISED = """
from target_postgres_window_state import read_ahead

class Broken:
    calls = 0
    def readlines(self, hint):
        self.calls += 1
        if self.calls == 1:
            return ["a\\n", "b\\n"]
        raise OSError("input gone")

got = []
try:
    for line in read_ahead.lines(Broken()):
        got.append(line)
except OSError as error:
    assert str(error) == "input gone" and got == ["a\\n", "b\\n"], (error, got)
    print("ok")
"""


def _run(script: str) -> str:
    done = subprocess.run(
        [str(LOADER / "python"), "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_the_writer_is_not_blocked_while_the_loader_is_busy():
    assert _run(WRITER_NOT_BLOCKED) == "ok"


def test_a_read_error_reaches_the_loader_after_the_lines_before_it():
    assert _run(READ_ERROR_RAISED) == "ok"
