"""What the command line reads from the marts: schema mode, summaries and the coverage check."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
import yaml

MARTS = ("meta_insights_daily", "meta_insights_levels")


def marts_schema() -> str:
    return os.environ.get("DBT_TARGET_SCHEMA") or "analytics"


def expected_columns(root: Path) -> dict[str, list[str]]:
    """The columns each mart's dbt contract declares (transform/models/marts/*.yml)."""
    expected: dict[str, list[str]] = {}
    for path in sorted((root / "transform" / "models" / "marts").glob("*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models") or []:
            if model.get("name") in MARTS:
                expected[model["name"]] = [c["name"] for c in model.get("columns") or []]
    return expected


@dataclass(frozen=True)
class SchemaMode:
    mode: str  # "extended" or "legacy"
    missing: dict[str, list[str]]

    def log_line(self) -> str:
        if self.mode == "extended":
            return 'schemaMode: "extended"'
        gaps = "; ".join(f"{table}: {', '.join(cols)}" for table, cols in self.missing.items())
        return (
            f'schemaMode: "legacy" (missing columns: {gaps}); '
            "this run's dbt build adds them and rebuilds the marts in full"
        )


def schema_mode(conn: psycopg.Connection, root: Path) -> SchemaMode:
    """``extended`` when the marts are absent or have every expected column, else ``legacy``."""
    missing: dict[str, list[str]] = {}
    for table, columns in expected_columns(root).items():
        present = {
            row[0]
            for row in conn.execute(
                "select column_name from information_schema.columns "
                "where table_schema = %s and table_name = %s",
                (marts_schema(), table),
            )
        }
        if present:
            gaps = [c for c in columns if c not in present]
            if gaps:
                missing[table] = gaps
    return SchemaMode("legacy" if missing else "extended", missing)


def relation_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute(
        "select 1 from information_schema.tables where table_schema = %s and table_name = %s",
        (marts_schema(), name),
    ).fetchone()
    return row is not None


def level_summary(
    conn: psycopg.Connection, tenant_id: str, accounts: list[str]
) -> list[tuple[str, str, int, object, object]]:
    """(account, level, rows, first date, last date) from meta_insights_levels."""
    if not relation_exists(conn, "meta_insights_levels"):
        return []
    return conn.execute(
        f"""
        select ad_account_id, level, count(*), min(date), max(date)
        from "{marts_schema()}".meta_insights_levels
        where tenant_id::text = %s and ad_account_id = any(%s)
        group by 1, 2 order by 1, 2
        """,
        (tenant_id, accounts),
    ).fetchall()


def verification(
    conn: psycopg.Connection, tenant_id: str, accounts: list[str]
) -> tuple[list[tuple], list[tuple]]:
    """The playbook's verification SQL: coverage per account and level, and the attribution,
    report-time and breakdown values present in meta_insights_daily."""
    schema = marts_schema()
    account_filter = "and ad_account_id = any(%(accounts)s)" if accounts else ""
    params = {"tenant": tenant_id, "accounts": accounts}
    coverage = conn.execute(
        f"""
        select ad_account_id, level, rows, first_date, last_date, missing_days, missing_dates
        from "{schema}".meta_insights_coverage
        where tenant_id::text = %(tenant)s {account_filter}
        order by 1, 2
        """,
        params,
    ).fetchall()
    values = conn.execute(
        f"""
        select ad_account_id, level, action_report_time, attribution_window,
               breakdowns::text, count(*)
        from "{schema}".meta_insights_daily
        where tenant_id::text = %(tenant)s {account_filter}
        group by 1, 2, 3, 4, 5
        order by 1, 2, 3, 4, 5
        """,
        params,
    ).fetchall()
    return coverage, values
