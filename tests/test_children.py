"""A run's children end with it, and the watchdog does not wait on their zombies.

meta_elt.children starts each Meltano run in a process group watched by meta_elt/watchdog.py.
An orphan's zombie stays in its group until init reaps it (a second later on some machines,
never under a PID 1 that does not reap), so the watchdog counts only members that are not
zombies as alive."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from meta_elt import children
from meta_elt.watchdog import alive


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _until(condition, what: str) -> None:
    """Wait for a condition of the system under test (bounded, so a bug fails, not hangs)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


def test_a_group_of_zombies_is_not_alive_and_a_running_member_is() -> None:
    running = subprocess.Popen(["sleep", "60"], start_new_session=True)
    ended = subprocess.Popen(["true"], start_new_session=True)
    try:
        _until(lambda: _state(ended.pid) == "Z", "the ended child became a zombie")
        assert alive(running.pid)
        assert not alive(ended.pid)  # not reaped yet: a zombie, still in its group
    finally:
        running.kill()
        running.wait()
        ended.wait()
    assert not alive(running.pid)


def test_what_a_run_leaves_behind_is_stopped_when_it_ends(tmp_path) -> None:
    pid_file = tmp_path / "orphan.pid"
    script = f"sleep 60 & echo $! > {pid_file}; exit 0"
    with children.guarded(["bash", "-c", script]) as proc:
        proc.wait()
    orphan = int(pid_file.read_text())
    # the watchdog returned only once no member of the group was alive
    assert not os.path.exists(f"/proc/{orphan}") or _state(orphan) in ("Z", "X")
    assert not alive(proc.pid)


def test_the_watchdog_does_not_wait_out_its_grace_for_a_group_of_zombies() -> None:
    """The group's only member is a zombie nobody reaps (our unreaped child, as an orphan under a
    PID 1 that does not reap): the watchdog must end at once, not after its grace period."""
    zombie = subprocess.Popen(["true"], start_new_session=True)
    read_fd, write_fd = os.pipe()
    try:
        _until(lambda: _state(zombie.pid) == "Z", "the child became a zombie")
        watchdog = subprocess.Popen(
            [sys.executable, str(children.WATCHDOG), str(read_fd), "3600"], pass_fds=(read_fd,)
        )
        os.close(read_fd)
        os.write(write_fd, f"{zombie.pid}\n".encode())
        os.close(write_fd)
        assert watchdog.wait(timeout=60) == 0  # not 3600 s later
    finally:
        zombie.wait()
