"""Smoke tests of the toolchain itself: Meltano + target-postgres + PostgreSQL provisioning."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

from meta_elt import postgres
from tests.support import DBT_VENV, FIXTURES, ROOT, meltano

RAW_FIXTURE = FIXTURES / "raw_meta.singer.jsonl"


def _expected_keys(path: Path) -> dict[str, set[tuple]]:
    """Distinct key tuples per stream in a Singer file (what an upserting loader must keep)."""
    keys: dict[str, list[str]] = {}
    expected: dict[str, set[tuple]] = defaultdict(set)
    for line in path.read_text().splitlines():
        message = json.loads(line)
        if message["type"] == "SCHEMA":
            keys[message["stream"]] = message["key_properties"]
        elif message["type"] == "RECORD":
            record = message["record"]
            key = tuple(str(record[k]) for k in keys[message["stream"]])
            expected[message["stream"]].add(key)
    return expected


def test_singer_fixture_lands_through_meltano(pg_server: postgres.Server, scratch_schema: str):
    expected = _expected_keys(RAW_FIXTURE)
    assert expected, "the fixture has records"

    done = meltano(
        "invoke",
        "target-postgres",
        server=pg_server,
        env={"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": scratch_schema},
        stdin=RAW_FIXTURE.read_bytes(),
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]

    keys_by_stream = {
        json.loads(line)["stream"]: json.loads(line)["key_properties"]
        for line in RAW_FIXTURE.read_text().splitlines()
        if json.loads(line)["type"] == "SCHEMA"
    }
    with pg_server.connect() as conn:
        for stream, keys in expected.items():
            columns = ", ".join(f'"{k}"::text' for k in keys_by_stream[stream])
            rows = conn.execute(f'select {columns} from "{scratch_schema}"."{stream}"').fetchall()
            assert len(rows) == len(keys), f"{stream}: one row per key"
            assert {tuple(r) for r in rows} == keys, stream
            loaded_at_nulls = conn.execute(
                f'select count(*) from "{scratch_schema}"."{stream}" where _sdc_batched_at is null'
            ).fetchone()[0]
            assert loaded_at_nulls == 0, "every row carries its load time"


def test_reloading_the_fixture_upserts_instead_of_duplicating(
    pg_server: postgres.Server, scratch_schema: str
):
    for _ in range(2):
        done = meltano(
            "invoke",
            "target-postgres",
            server=pg_server,
            env={"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": scratch_schema},
            stdin=RAW_FIXTURE.read_bytes(),
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
    expected = _expected_keys(RAW_FIXTURE)
    with pg_server.connect() as conn:
        for stream, keys in expected.items():
            table = f'"{scratch_schema}"."{stream}"'
            count = conn.execute(f"select count(*) from {table}").fetchone()[0]
            assert count == len(keys), stream


def test_dbt_sends_no_usage_stats_whatever_the_environment(tmp_path: Path):
    """dbt_project.yml's flags turn dbt's telemetry off for every run of the project (meta-elt's,
    plain `meltano invoke`, Dagster's parse), not only where DO_NOT_TRACK happens to be set: a
    dbt that tracks first writes its anonymous user id (.user.yml) into the profiles dir."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(ROOT / "transform" / "profiles" / "profiles.yml", profiles)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DO_NOT_TRACK", "DBT_SEND_ANONYMOUS_USAGE_STATS")
    }
    env.update(
        DBT_PROJECT_DIR=str(ROOT / "transform"),
        DBT_PROFILES_DIR=str(profiles),
        DBT_TARGET_PATH=str(tmp_path / "target"),
        DBT_LOG_PATH=str(tmp_path / "logs"),
    )
    parsed = subprocess.run(
        [str(DBT_VENV / "bin" / "dbt"), "parse"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert parsed.returncode == 0, parsed.stdout[-3000:]
    assert not (profiles / ".user.yml").exists(), "dbt tracked this run"
