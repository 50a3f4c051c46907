"""Children die with the process that started them, whatever kills it.

A Meltano run is a tree: meltano, the tap, target-postgres, dbt. Each run is started in a process
group of its own, watched by a tiny watchdog process that holds the read end of a pipe whose only
writer is meta-elt. When meta-elt ends, by return, exception, Ctrl-C or kill -9, the kernel closes
the pipe, and the watchdog stops the whole group (SIGTERM, then SIGKILL after a grace period). No
orphan keeps loading next to a resumed run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

GRACE_SECONDS = 3

#: The watchdog: a script of its own (no package import), run by this Python.
WATCHDOG = Path(__file__).with_name("watchdog.py")


@contextmanager
def guarded(args: list[str], **popen_kwargs: object) -> Iterator[subprocess.Popen]:
    """``subprocess.Popen(args, ...)`` in a process group of its own that cannot outlive us."""
    read_fd, write_fd = os.pipe()  # both non-inheritable: only the watchdog gets the read end
    watchdog = subprocess.Popen(
        [sys.executable, str(WATCHDOG), str(read_fd), str(GRACE_SECONDS)],
        pass_fds=(read_fd,),
        env={},  # it needs nothing, and inherits no secret
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(read_fd)
    try:
        proc = subprocess.Popen(args, start_new_session=True, **popen_kwargs)  # type: ignore[call-overload]
        os.write(write_fd, f"{proc.pid}\n".encode())
        yield proc
    finally:
        os.close(write_fd)  # the watchdog stops what is left of the group, then exits
        watchdog.wait()
