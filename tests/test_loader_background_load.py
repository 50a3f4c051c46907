"""A full batch loads on the loader's own thread while the input is read on; STATE waits for it.

Loading a batch is mostly waiting on PostgreSQL (COPY, the merge): done on the reading thread,
reading stopped meanwhile. Now a full sink's batch loads on a second thread. What must not
change: a STATE is confirmed only once every row before it is committed, and a load that fails
fails the loader with no STATE confirmed. Run in the loader's own Python with its loads and
STATE writes recorded, in order, to the file named by EVENTS.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from meta_elt import postgres
from tests.support import FIXTURES
from tests.test_loader_setup_race import loader_command

ROWS, BATCH = 300, 100

#: Each load waits (3 s at most) for a STATE to be written first: a loader that wrote a STATE
#: before the loads of the rows before it were committed shows it in the order of EVENTS.
#: FAIL_LOAD=1: the first load fails instead (the ones after it run, and must not commit).
RECORDING_LOADER = """
import atexit, json, os, threading
import target_postgres_window_state as loader

events = []
state_written = threading.Event()
atexit.register(lambda: open(os.environ["EVENTS"], "w").write(json.dumps(events)))
def recorded(load):  # both ways a batch loads: decoded rows, or records as JSON text
    def recorded_load(self, rows, *after):
        if os.environ.pop("FAIL_LOAD", None):  # the first load only
            raise RuntimeError("the database went away")
        state_written.wait(3)
        load(self, rows, *after)
        events.append({"loaded": len(rows), "thread": threading.current_thread().name})
    return recorded_load

sink = loader.LoadStampedPostgresSink
for name in ("_copy_load", "_json_load"):
    setattr(sink, name, recorded(getattr(sink, name)))
write_state = loader.TargetPostgresWindowState._write_state_message

def recorded_write_state(self, state):
    events.append({"state": state})
    state_written.set()
    write_state(self, state)

loader.TargetPostgresWindowState._write_state_message = recorded_write_state
loader.TargetPostgresWindowState.cli()
"""


def _rows_then_state(tenant: str) -> bytes:
    """The fixture's insights_ad SCHEMA, ROWS of its records for ``tenant``, then a STATE."""
    lines, rows = [], 0
    for line in (FIXTURES / "raw_meta.singer.jsonl").read_text().splitlines():
        message = json.loads(line)
        if message.get("stream") != "insights_ad":
            continue
        if message["type"] == "RECORD":
            if rows == ROWS:
                continue
            rows += 1
            message["record"]["tenant_id"] = tenant
        lines.append(json.dumps(message))
    lines.append(json.dumps({"type": "STATE", "value": {"bookmarks": {"insights_ad": {}}}}))
    return ("\n".join(lines) + "\n").encode()


def _keys(lines: bytes) -> int:
    """How many distinct keys the RECORDs of ``lines`` have (insights_ad's key properties)."""
    records = [json.loads(line) for line in lines.splitlines()]
    key = ("tenant_id", "account_id", "date", "ad_id")
    return len({tuple(r["record"][k] for k in key) for r in records if r["type"] == "RECORD"})


def _run(pg_server: postgres.Server, tmp_path: Path, schema: str, **extra: str):
    command, env = loader_command(pg_server, tmp_path, schema)
    config = json.loads(Path(command[2]).read_text())
    settings = {"batch_size_rows": BATCH, "validate_records": False}  # as meltano.yml has it
    Path(command[2]).write_text(json.dumps({**config, **settings}))
    events = tmp_path / "events.json"
    done = subprocess.run(
        [str(Path(command[0]).parent / "python"), "-c", RECORDING_LOADER, *command[1:]],
        input=_rows_then_state(str(uuid.uuid4())),
        capture_output=True,
        env={**env, "EVENTS": str(events), **extra},
        timeout=120,
    )
    return done, json.loads(events.read_text()) if events.exists() else []


def test_full_batches_load_on_the_loader_thread_and_the_state_waits_for_them(
    pg_server: postgres.Server, tmp_path
):
    schema = f"background_{uuid.uuid4().hex[:10]}"
    try:
        done, events = _run(pg_server, tmp_path, schema)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        first_state = next(i for i, e in enumerate(events) if "state" in e)
        loads = [e for e in events if "loaded" in e]
        assert loads == events[:first_state], events  # every load committed before the STATE
        assert {e["thread"] for e in loads} != {"MainThread"}, events  # loaded off the reader
        assert done.stdout.decode().count('"bookmarks"') >= 1  # and confirmed to Meltano
        with pg_server.connect() as conn:
            stored = conn.execute(f'select count(*) from "{schema}".insights_ad').fetchone()[0]
        assert sum(e["loaded"] for e in loads) == ROWS  # every record, in full batches
        assert stored == _keys(_rows_then_state("any"))  # the records of a key merge
    finally:
        with pg_server.connect(autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')


def test_a_failed_background_load_fails_the_loader_with_no_state_confirmed(
    pg_server: postgres.Server, tmp_path
):
    schema = f"background_{uuid.uuid4().hex[:10]}"
    try:
        done, events = _run(pg_server, tmp_path, schema, FAIL_LOAD="1")
        assert done.returncode != 0
        assert "the database went away" in done.stderr.decode()
        assert "bookmarks" not in done.stdout.decode(), done.stdout.decode()
        assert not [e for e in events if "state" in e], events
        with pg_server.connect() as conn:  # the batches after it waited for it, then gave up
            stored = conn.execute(f'select count(*) from "{schema}".insights_ad').fetchone()[0]
        assert stored == 0
    finally:
        with pg_server.connect(autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')
