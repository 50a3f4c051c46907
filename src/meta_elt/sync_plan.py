"""Where a daily sync starts: from what was synced, never wider.

The tap starts each (report, account) at ``max(start_date, bookmark + 1 - lookback)``, or at
``start_date`` without a bookmark. So the sync's ``start_date`` is the earliest day any of the
tenant's (report, account) pairs needs: ``bookmark + 1 - lookback`` for those with a bookmark,
``today - lookback`` for an account without one (a first sync, an account added later, or a run
that failed before its first window). A failed or partial run saves no insights bookmark, so it
cannot widen the next run; a sync that missed days starts early enough to close the gap.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

from meta_elt import meltano_run, runtime


def bookmarks(state: dict) -> dict[tuple[str, str], dt.date]:
    """(insights stream, account) → last day known complete, from a Singer state."""
    found: dict[tuple[str, str], dt.date] = {}
    for stream, stream_state in (state.get("bookmarks") or {}).items():
        if not stream.startswith("insights_") or stream == "insights_windows":
            continue
        for partition in (stream_state or {}).get("partitions") or []:
            account = (partition.get("context") or {}).get("account_id")
            value = partition.get("replication_key_value")
            if account and value:
                try:
                    found[(stream, str(account))] = dt.date.fromisoformat(str(value)[:10])
                except ValueError:
                    continue
    return found


def start_date(
    state: dict,
    accounts: Sequence[str],
    *,
    today: dt.date,
    lookback_days: int,
    floor: dt.date,
) -> dt.date:
    """The earliest day this sync must extract (see the module docstring), at least ``floor``."""
    lookback = dt.timedelta(days=lookback_days)
    marks = bookmarks(state)
    needed = [day + dt.timedelta(days=1) - lookback for day in marks.values()]
    covered = {account for _, account in marks}
    if any(account not in covered for account in accounts):
        needed.append(today - lookback)
    return max(min(needed, default=today - lookback), floor)


def state_of(root: Path, env: dict[str, str], suffix: str) -> dict:
    """The Singer state of ``tap-facebook → target-postgres`` runs with this state-id suffix."""
    done = subprocess.run(
        [*meltano_run.command(root, env), "state", "get", runtime.state_id(env, suffix)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        umask=0o077,
    )
    if done.returncode != 0 or not done.stdout.strip():
        return {}
    try:
        state = json.loads(done.stdout.strip().splitlines()[-1])
    except json.JSONDecodeError:
        return {}
    singer_state = state.get("singer_state", state) if isinstance(state, dict) else {}
    return singer_state if isinstance(singer_state, dict) else {}
