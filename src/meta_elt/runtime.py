"""The environment a Meltano run gets: database, schemas, tap settings, and where the tap finds
its tenant's token (a socket served by secrets.TokenBroker: no process of a run inherits any
tenant's token, see secrets.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterable
from pathlib import Path

from meta_elt import locks, postgres, secrets
from meta_elt.tenants import Tenant

#: Meltano's system database (state, run history) lives in this schema of the project database
#: (meltano.yml's database_uri), so state survives the machine, parallel runs don't contend for a
#: SQLite file, and plain `meltano` sees the same state as meta-elt.
MELTANO_SCHEMA = "meltano"
#: The loader's raw schema setting, as Meltano names it; dbt reads the same variable.
RAW_SCHEMA_VARIABLE = "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"


def state_id_suffix(kind: str, tenant_id: str, *scope: str) -> str:
    """Backfills and the daily sync keep separate Meltano state (ids never collide).

    A backfill's state belongs to its range (``backfill-<tenant>-<account>-<since>-<until>``), so
    `--resume` continues that very backfill and another range never inherits its bookmark."""
    return "-".join([kind, tenant_id, *scope])


def state_id(env: dict[str, str], suffix: str) -> str:
    """The full Meltano state id (and run name) of a ``tap-facebook target-postgres`` run."""
    environment = env.get("MELTANO_ENVIRONMENT") or "dev"
    return f"{environment}:tap-facebook-to-target-postgres:{suffix}"


def meltano_env(
    server: postgres.Server, root: Path, run_name: str, token_variables: Iterable[str]
) -> dict[str, str]:
    """os.environ without any token + PG* + where Meltano keeps its system database, and this
    run's own Meltano system dir and dbt target/log dirs (see isolated_sys_dir): enough for dbt
    runs. ``token_variables``: every tenant's token variable, all removed."""
    env = {**secrets.scrubbed_env(os.environ, token_variables), **server.libpq_env()}
    workdir = isolated_sys_dir(root, run_name)
    env["MELTANO_SYS_DIR_ROOT"] = str(workdir)
    env["DBT_TARGET_PATH"] = str(workdir / "dbt" / "target")
    env["DBT_LOG_PATH"] = str(workdir / "dbt" / "logs")
    env.setdefault("MELTANO_SEND_ANONYMOUS_USAGE_STATS", "false")
    # The run's log is a file: no ANSI from dbt, and the loader's per-statement INSERT and METRIC
    # lines below warnings (the tap's window lines are what progress reads). Set them to override.
    env.setdefault("DBT_USE_COLORS", "false")
    env.setdefault("TARGET_POSTGRES_LOGLEVEL", "WARNING")
    return env


def system_database_is_project(env: dict[str, str]) -> bool:
    """Whether Meltano keeps its system database in the project database's ``meltano`` schema
    (meltano.yml's database_uri), not elsewhere through MELTANO_DATABASE_URI."""
    return not env.get("MELTANO_DATABASE_URI")


def tap_env(
    server: postgres.Server,
    root: Path,
    run_name: str,
    tenant: Tenant,
    *,
    token_variables: Iterable[str],
    token_file: Path,
    accounts: list[str],
    start: dt.date | None,
    end: dt.date | None,
    extra: dict[str, object] | None = None,
) -> dict[str, str]:
    """meltano_env + the tap's settings for one tenant; the token is read from ``token_file``
    (the socket of the run's TokenBroker)."""
    env = meltano_env(server, root, run_name, token_variables)
    env["TAP_FACEBOOK_ACCESS_TOKEN_FILE"] = str(token_file)
    env["TAP_FACEBOOK_TENANT_ID"] = tenant.id
    env["TAP_FACEBOOK_ACCOUNT_IDS"] = json.dumps(accounts)
    if start:
        env["TAP_FACEBOOK_START_DATE"] = start.isoformat()
    if end:
        env["TAP_FACEBOOK_END_DATE"] = end.isoformat()
    else:
        env.pop("TAP_FACEBOOK_END_DATE", None)
    for key, value in {**tenant.settings, **(extra or {})}.items():
        env[f"TAP_FACEBOOK_{key.upper()}"] = (
            json.dumps(value) if isinstance(value, list | dict) else str(value)
        )
    return env


def raw_schema() -> str:
    """Where target-postgres writes: its default_target_schema setting (Meltano's variable
    TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA, default raw_meta in load/loaders.meltano.yml)."""
    return os.environ.get(RAW_SCHEMA_VARIABLE) or "raw_meta"


#: The latest successful scheduled dbt build of the marts, per dbt command: when it started
#: (database clock) and which run started it (runs.build_marts: builds coalesce).
BUILDS_TABLE = f"{MELTANO_SCHEMA}.meta_elt_dbt_builds"


def prepare_state_schema(server: postgres.Server) -> None:
    """Meltano's schema and meta-elt's record of builds, created once. ``create ... if not
    exists`` is not safe against itself: two first runs into a new database both create it and
    one fails on a catalog's unique index, so the creation is serialized by a transaction
    advisory lock."""
    with server.connect() as conn:
        conn.execute("select pg_advisory_xact_lock(%s)", (locks.key("create-schema"),))
        conn.execute(f"create schema if not exists {MELTANO_SCHEMA}")
        conn.execute(
            f"create table if not exists {BUILDS_TABLE} "
            "(command text primary key, started_at timestamptz not null, run_name text not null)"
        )


#: What a Meltano run shares with the project's .meltano/: the installed plugin venvs.
_SHARED_SYS_DIRS = ("extractors", "loaders", "utilities", "mappers", "orchestrators")


def isolated_sys_dir(root: Path, name: str) -> Path:
    """A Meltano system dir of this run's own that shares the installed plugin venvs.

    Meltano writes each plugin's config and discovered catalog under ``.meltano/run/<plugin>``,
    so two `meltano run`s at once in one project overwrite each other's catalog ("Invalid
    catalog"). Runs started by meta-elt (parallel tenants, concurrent backfills) each get
    ``.meltano/workers/<name>`` with its own ``run/`` and symlinks to the shared venvs; set it as
    MELTANO_SYS_DIR_ROOT. State is unaffected: it lives in the system database.
    """
    shared = root / ".meltano"
    worker = shared / "workers" / name
    worker.mkdir(parents=True, exist_ok=True)
    for sub in _SHARED_SYS_DIRS:
        link = worker / sub
        if (shared / sub).exists() and not link.exists():
            with contextlib.suppress(FileExistsError):  # made by a run of the same name
                link.symlink_to(shared / sub, target_is_directory=True)
    return worker


def log_dir(root: Path) -> Path:
    return root / ".meltano" / "logs" / "meta-elt"
