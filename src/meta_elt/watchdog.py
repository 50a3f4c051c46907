"""The watchdog of children.guarded: a script run as ``python watchdog.py <fd> <grace>``.

It reads process group ids from the pipe ``fd`` until meta-elt's end closes it, then stops each
group: SIGTERM, and SIGKILL after ``grace`` seconds if a member is still alive. Standard library
only, and no import of meta_elt, so it starts in milliseconds.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def alive(pgid: int) -> bool:
    """Whether the group has a member that is not a zombie. An orphan's zombie stays in its group
    until init reaps it: a second later on some machines, never in a container whose PID 1 does
    not reap, and a group of zombies would hold the run for the whole grace period twice."""
    try:
        entries = os.listdir("/proc")
    except OSError:  # no procfs: a zombie counts as alive
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def stop(pgid: int, grace: float) -> None:
    """SIGTERM to the group, then SIGKILL if it is still alive after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not alive(pgid):
            return
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and alive(pgid):
            time.sleep(0.05)


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd, grace = int(argv[1]), float(argv[2])
    data = b""
    while True:
        try:
            chunk = os.read(fd, 64)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    for pgid in {int(p) for p in data.split()}:
        stop(pgid, grace)


if __name__ == "__main__":
    main(sys.argv)
