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

import psycopg

from meta_elt import meltano_run, postgres, runtime


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


def state_of(server: postgres.Server, root: Path, env: dict[str, str], suffix: str) -> dict:
    """The Singer state of ``tap-facebook → target-postgres`` runs with this state-id suffix, as
    ``meltano state get`` prints it (partial state merged onto the completed one).

    Read with one query when Meltano's system database is the project database (meltano.yml's
    database_uri, the default): a ``meltano state get`` is a process that spends about a second
    of CPU starting before its query. Elsewhere (MELTANO_DATABASE_URI), Meltano reads it."""
    state_id = runtime.state_id(env, suffix)
    if runtime.system_database_is_project(env):
        state = _from_system_schema(server, state_id)
    else:
        state = _from_meltano(root, env, state_id)
    singer_state = state.get("singer_state", state) if isinstance(state, dict) else {}
    return singer_state if isinstance(singer_state, dict) else {}


def _from_system_schema(server: postgres.Server, state_id: str) -> dict:
    """Meltano's row for ``state_id`` in the project database's ``meltano`` schema, merged as
    Meltano's ``MeltanoState.json_merged`` does; {} if none (or the database cannot say)."""
    try:
        with server.connect() as conn:
            row = conn.execute(
                f"select partial_state, completed_state from {runtime.MELTANO_SCHEMA}.state "
                "where state_id = %s",
                (state_id,),
            ).fetchone()
    except psycopg.Error:  # as a failing `meltano state get`: the run itself will say why
        return {}
    if row is None:
        return {}
    partial, completed = (_json_object(text) for text in row)
    return _merged(partial, completed)


def _json_object(text: str | None) -> dict:
    """A state column's value: Meltano keeps each state as JSON text."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _merged(source: dict, destination: dict) -> dict:
    """``source`` merged at depth onto ``destination`` (meltano.core.utils.merge): dicts merge,
    any other value of ``source`` replaces."""
    for key, value in source.items():
        if isinstance(value, dict):
            node = destination.get(key)
            destination[key] = _merged(value, node if isinstance(node, dict) else {})
        else:
            destination[key] = value
    return destination


def _from_meltano(root: Path, env: dict[str, str], state_id: str) -> dict:
    done = subprocess.run(
        [*meltano_run.command(root, env), "state", "get", state_id],
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
    return state if isinstance(state, dict) else {}
