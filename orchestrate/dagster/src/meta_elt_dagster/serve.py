"""`meta-elt-dagster serve` (what `make orchestrate` runs): the Dagster webserver and daemon with
the project's code location, on the project's PostgreSQL, until Ctrl-C.

Steps: check PostgreSQL (PG*, as `meta-elt with-postgres` provides it) and create the schema
`dagster`; when no tenant's token variable is set, start the Graph API sandbox with the demo world
and hand its demo tokens to the tenants (said on screen); `dbt parse`; DAGSTER_HOME with the
project's dagster.yaml; one code server (gRPC) shared by the daemon and the webserver; print the
URL. Ctrl-C (or SIGTERM) stops the webserver, the daemon, the code server and the sandbox.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg
import yaml

SCHEMA = "dagster"
DEMO_WORLD = Path("orchestrate") / "demo" / "world.yml"


class ServeError(RuntimeError):
    """One line: what failed and the fix."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bin(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def prepare_database() -> str:
    try:
        with psycopg.connect("", autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"create schema if not exists {SCHEMA}")
            return f"{conn.info.user}@{conn.info.host}:{conn.info.port}/{conn.info.dbname}"
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        raise ServeError(
            f"PostgreSQL refused ({reason}); set PG* or run through `meta-elt with-postgres`"
        ) from None


def write_home(home: Path, root: Path, code_port: int) -> None:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / "orchestrate" / "dagster" / "dagster.yaml", home / "dagster.yaml")
    workspace = {
        "load_from": [
            {
                "grpc_server": {
                    "host": "127.0.0.1",
                    "port": code_port,
                    "location_name": "meta_elt",
                }
            }
        ]
    }
    (home / "workspace.yaml").write_text(yaml.safe_dump(workspace))


class Children:
    """The processes started here, stopped in reverse order."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(command, start_new_session=True, **kwargs)
        self.procs.append((name, proc))
        return proc

    def dead(self) -> str | None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                return f"{name} exited with {proc.returncode}"
        return None

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _tenants(root: Path) -> list[dict]:
    done = subprocess.run(
        [_bin("meta-elt"), "tenants", "list", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ServeError(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout)["tenants"]


def start_sandbox(children: Children, root: Path, tenants: list[dict]) -> str:
    """The sandbox with the demo world; each tenant gets the demo token of its first account."""
    proc = children.start(
        "meta-sandbox",
        [_bin("meta-sandbox"), "serve", "--port", "0", "--world", str(root / DEMO_WORLD),
         "--time-scale", os.environ.get("META_ELT_SANDBOX_TIME_SCALE", "0.05")],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "http://" not in line:
        raise ServeError(f"meta-sandbox did not start: {line.strip()!r}")
    base_url = line[line.find("http://") :].split()[0].rstrip("/")
    with urllib.request.urlopen(f"{base_url}/__sandbox/world", timeout=30) as answer:
        world = json.loads(answer.read())
    tokens = {a: t["token"] for t in world["tokens"] for a in t["accounts"]}
    for tenant in tenants:
        token = next((tokens[a] for a in tenant["accounts"] if a in tokens), None)
        if token:
            os.environ[tenant["token_env"]] = token
    os.environ["TAP_FACEBOOK_API_URL"] = base_url
    os.environ.setdefault("TAP_FACEBOOK_POLL_INTERVAL", "0.25")
    return base_url


def wait_for_webserver(children: Children, url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = children.dead()
        if dead:
            raise ServeError(f"{dead} before the webserver answered; see its output above")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise ServeError(f"the webserver did not answer on {url} within {timeout:.0f}s")


def wait_for_code_server(children: Children, port: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = children.dead()
        if dead:
            raise ServeError(f"{dead} while loading the code location; see its output above")
        ping = subprocess.run(
            [_bin("dagster"), "api", "grpc-health-check", "--port", str(port)],
            capture_output=True,
            check=False,
        )
        if ping.returncode == 0:
            return
        time.sleep(1)
    raise ServeError(f"the code location did not load within {timeout:.0f}s")


def serve(host: str, port: int, home: Path | None) -> int:
    from meta_elt_dagster import marts, project

    root = project.project_root()
    os.chdir(root)
    # A run's process imports the code location (dagster, dbt) before it answers the daemon: on a
    # busy host that can take more than Dagster's default 60 s.
    os.environ.setdefault("DAGSTER_GRPC_TIMEOUT_SECONDS", "180")
    children = Children()
    stopping = False

    def _stop(signum, _frame):
        nonlocal stopping
        if stopping:  # a second Ctrl-C while stopping: let the stop finish
            return
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # also when started with SIGINT ignored (a background job)
    try:
        print(f"PostgreSQL: {prepare_database()}, Dagster's storage in schema {SCHEMA}", flush=True)
        tenants = _tenants(root)
        if not any(os.environ.get(t["token_env"]) for t in tenants):
            names = ", ".join(t["token_env"] for t in tenants)
            base_url = start_sandbox(children, root, tenants)
            print(
                f"No Meta token set ({names}): using the Graph API sandbox with the demo world "
                f"({DEMO_WORLD}) at {base_url}",
                flush=True,
            )
        print("dbt parse (the manifest the dbt assets come from)...", flush=True)
        marts.prepare(marts.dbt_project(root), force=True)
        home = home or Path(os.environ.get("DAGSTER_HOME") or tempfile.mkdtemp(prefix="dagster-"))
        os.environ["DAGSTER_HOME"] = str(home)
        code_port = _free_port()
        write_home(home, root, code_port)
        children.start(
            "the code server",
            [_bin("dagster"), "api", "grpc", "-m", "meta_elt_dagster.definitions",
             "-h", "127.0.0.1", "-p", str(code_port), "--location-name", "meta_elt"],
        )  # fmt: skip
        wait_for_code_server(children, code_port)
        workspace = str(home / "workspace.yaml")
        children.start("dagster-daemon", [_bin("dagster-daemon"), "run", "-w", workspace])
        children.start(
            "dagster-webserver",
            [_bin("dagster-webserver"), "-h", host, "-p", str(port), "-w", workspace],
        )
        url = f"http://{host}:{port}"
        wait_for_webserver(children, url)
        print(f"Dagster UI: {url}  (DAGSTER_HOME {home}; Ctrl-C stops it)", flush=True)
        while True:
            dead = children.dead()
            if dead:
                raise ServeError(f"{dead}; stopping the others")
            time.sleep(1)
    except KeyboardInterrupt:
        stopping = True
        print("\nstopping the webserver, the daemon and the code server...", flush=True)
        return 0
    except ServeError as exc:
        print(f"meta-elt-dagster: error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        children.stop()
        if stopping:
            print("stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="meta-elt-dagster",
        description="The project's Dagster: webserver + daemon + code location (make orchestrate).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("serve", help="start Dagster on the project's PostgreSQL until Ctrl-C")
    sp.add_argument("--host", default="127.0.0.1", help="webserver address (default 127.0.0.1)")
    sp.add_argument("--port", type=int, default=3000, help="webserver port (default 3000; 0: any)")
    sp.add_argument("--home", type=Path, help="DAGSTER_HOME (default: $DAGSTER_HOME or a temp dir)")
    args = parser.parse_args(argv)
    port = args.port or _free_port()
    return serve(args.host, port, args.home)


if __name__ == "__main__":
    sys.exit(main())
