"""The dbt project as dagster-dbt assets: the models of the scheduled build (transform/
transformers.meltano.yml `build_meta`), downstream of the raw assets, tests as asset checks.
They are built whole, once loads have landed (automation.build_marts_sensor), or by a backfill
that selects them.

A build holds the PostgreSQL advisory lock `dbt-build` that `meta-elt` holds around its own dbt
builds (docs/CONTRACTS.md, "Locks"), so a build started here and one started by an operator's
`meta-elt sync` never run at once in one database.
"""

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import yaml
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from meta_elt_dagster import project

#: The dbt source whose tables the raw assets are.
RAW_SOURCE = "meta_ads"
#: meta-elt's lock name for the dbt build of a database (src/meta_elt/runs.py DBT_LOCK).
DBT_LOCK = "dbt-build"


def lock_key(name: str) -> int:
    """The advisory lock key of ``name``, as meta-elt computes it (docs/CONTRACTS.md)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def dbt_build_lock(log) -> Iterator[None]:
    """Held for the build, on a connection of its own (PG* from the environment)."""
    with psycopg.connect(
        "", autocommit=True, application_name="dagster dbt build (meta_marts)"
    ) as conn:
        key = lock_key(DBT_LOCK)
        taken = conn.execute("select pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not (taken and taken[0]):
            log.info("waiting for the dbt build lock (another build of this database runs)")
            conn.execute("select pg_advisory_lock(%s)", (key,))
        yield


def dbt_project(root: Path) -> DbtProject:
    return DbtProject(
        project_dir=root / "transform",
        profiles_dir=root / "transform" / "profiles",
        target_path=Path("target") / "dagster",
    )


def dbt_executable() -> str:
    """The dbt installed beside this Python (the code location's environment), else PATH's."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


def cli_resource(dbt: DbtProject) -> DbtCliResource:
    return DbtCliResource(project_dir=dbt, dbt_executable=dbt_executable())


def prepare(dbt: DbtProject, *, force: bool = False) -> None:
    """`dbt parse` into transform/target/dagster when the manifest is missing (or ``force``)."""
    if force or not dbt.manifest_path.exists():
        cli_resource(dbt).cli(["parse", "--quiet"], target_path=dbt.target_path).wait()


def raw_tables(manifest_path: Path) -> list[str]:
    """The tables of the dbt source the raw assets stand for, from the manifest."""
    manifest = json.loads(manifest_path.read_text())
    return sorted(s["name"] for s in manifest["sources"].values() if s["source_name"] == RAW_SOURCE)


class Translator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "marts"


def build_dbt_assets(root: Path, dbt: DbtProject) -> dg.AssetsDefinition:
    build = project.scheduled_build(root)
    build_vars = yaml.safe_load(build.vars) if build.vars else None

    @dbt_assets(
        manifest=dbt.manifest_path,
        project=dbt,
        name="meta_marts",
        select=build.select,
        exclude=build.exclude or "",
        dagster_dbt_translator=Translator(
            settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
        ),
    )
    def meta_marts(context: dg.AssetExecutionContext, dbt_cli: DbtCliResource):
        args = ["build", *(["--vars", json.dumps(build_vars)] if build_vars else [])]
        if set(context.selected_asset_keys) != set(meta_marts.keys):
            # A part of the marts (picked in the UI): only the tests whose every parent is built
            # in this run, not a relationship test whose other side may not exist yet.
            os.environ["DBT_INDIRECT_SELECTION"] = "cautious"
        with dbt_build_lock(context.log):
            yield from dbt_cli.cli(args, context=context).stream()

    return meta_marts
