"""The daily sync's start reads Meltano's state with one query, and reads what Meltano reads.

sync_plan.state_of queries the project database's ``meltano.state`` row (partial state merged
onto the completed one) instead of starting ``meltano state get``; with MELTANO_DATABASE_URI set
it asks Meltano. Both paths must give the same state for the same row."""

from __future__ import annotations

import json
import os
import uuid
from urllib.parse import quote

from meta_elt import postgres, runtime, sync_plan
from tests.support import ROOT


def _partition(account: str, day: str) -> dict:
    return {"context": {"account_id": account}, "replication_key_value": day}


def _meltano_env(server: postgres.Server) -> dict[str, str]:
    """Meltano pointed at the same system database through MELTANO_DATABASE_URI."""
    pg = server.libpq_env()
    uri = (
        f"postgresql+psycopg:///?host={quote(pg['PGHOST'])}&port={pg['PGPORT']}"
        f"&user={quote(pg['PGUSER'])}&dbname={quote(pg['PGDATABASE'])}"
        "&options=-csearch_path%3Dmeltano"
    )
    return {**os.environ, **pg, "MELTANO_DATABASE_URI": uri}


def test_the_state_read_with_one_query_is_the_state_meltano_reads(pg_server) -> None:
    suffix = f"sync-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **pg_server.libpq_env()}
    env.pop("MELTANO_DATABASE_URI", None)
    completed = {
        "singer_state": {
            "bookmarks": {
                "insights_ad": {"partitions": [_partition("act_1", "2026-10-01")]},
                "insights_adset": {"partitions": [_partition("act_1", "2026-10-01")]},
                "accounts": {"replication_key_value": "x"},
            }
        }
    }
    partial = {
        "singer_state": {
            "bookmarks": {
                "insights_ad": {
                    "partitions": [
                        _partition("act_1", "2026-10-05"),
                        _partition("act_2", "2026-9-30"),
                    ]
                },
                "insights_campaign": {"partitions": [_partition("act_1", "2026-10-03")]},
            }
        }
    }
    with pg_server.connect() as conn:
        conn.execute(
            f"insert into {runtime.MELTANO_SCHEMA}.state (state_id, partial_state, completed_state)"
            " values (%s, %s, %s)",
            (runtime.state_id(env, suffix), json.dumps(partial), json.dumps(completed)),
        )
        conn.commit()

    with_one_query = sync_plan.state_of(pg_server, ROOT, env, suffix)
    from_meltano = sync_plan.state_of(pg_server, ROOT, _meltano_env(pg_server), suffix)

    assert with_one_query == from_meltano
    # Lists are replaced, dicts merged: the partial state's partitions win, the rest is kept.
    assert sync_plan.bookmarks(with_one_query) == {
        ("insights_ad", "act_1"): sync_plan.dt.date(2026, 10, 5),
        ("insights_adset", "act_1"): sync_plan.dt.date(2026, 10, 1),
        ("insights_campaign", "act_1"): sync_plan.dt.date(2026, 10, 3),
    }
    assert with_one_query["bookmarks"]["accounts"] == {"replication_key_value": "x"}


def test_a_state_id_never_run_has_no_state_either_way(pg_server) -> None:
    suffix = f"sync-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **pg_server.libpq_env()}
    env.pop("MELTANO_DATABASE_URI", None)
    assert sync_plan.state_of(pg_server, ROOT, env, suffix) == {}
    assert sync_plan.state_of(pg_server, ROOT, _meltano_env(pg_server), suffix) == {}
