"""The first loads into an empty database, side by side: target-postgres creates the raw schema
and tables when a stream's SCHEMA arrives, so loaders started together (`sync --all --parallel 4`
into an empty database) raced on CREATE TABLE (DuplicateTable) before the loader serialized its
table setup. Here four loaders start at once into an empty schema, ten rounds: what the first
`sync --all --parallel 4` does to the raw schema, without the rest of a sync (Meltano, the taps,
dbt: minutes a round), and more at once than a sync's loaders, whose starts Meltano spreads."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from meta_elt import postgres
from tests.support import FIXTURES, ROOT

LOADER = ROOT / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin"
LOADERS_AT_ONCE = 4
ROUNDS = 10


def _first_load(tenant: str) -> bytes:
    """The fixture's SCHEMA messages and one record per stream, stamped with ``tenant`` (loaders
    side by side load different tenants: the keys start with tenant_id). Table setup is what
    races."""
    lines, seen = [], set()
    for line in (FIXTURES / "raw_meta.singer.jsonl").read_text().splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD" and message["stream"] not in seen:
            seen.add(message["stream"])
            message["record"]["tenant_id"] = tenant
        elif message["type"] != "SCHEMA":
            continue
        lines.append(json.dumps(message))
    return ("\n".join(lines) + "\n").encode()


def loader_command(
    pg_server: postgres.Server, tmp_path: Path, schema: str
) -> tuple[list[str], dict[str, str]]:
    """The loader's command and environment, loading into ``schema`` of the test database."""
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {"sqlalchemy_url": "postgresql+psycopg://", "default_target_schema": schema,
             "load_method": "upsert", "add_record_metadata": True, "state_confirm_seconds": 0}
        )
    )  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", **pg_server.libpq_env(), "TARGET_POSTGRES_LOGLEVEL": "ERROR"}
    return [str(LOADER / "target-postgres-window-state"), "--config", str(config)], env


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_loaders_started_together_into_an_empty_schema_all_succeed(
    pg_server: postgres.Server, tmp_path, round_
):
    schema = f"race_{uuid.uuid4().hex[:10]}"
    command, env = loader_command(pg_server, tmp_path, schema)
    try:
        loaders = [
            subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )
            for _ in range(LOADERS_AT_ONCE)
        ]
        for loader in loaders:  # every loader gets its input before any is waited for
            assert loader.stdin is not None
            loader.stdin.write(_first_load(str(uuid.uuid4())))
            loader.stdin.close()
        failures = [p.stderr.read().decode()[-1500:] for p in loaders if p.wait(timeout=120) != 0]
        assert not failures, failures[0]
    finally:
        with pg_server.connect(autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')
