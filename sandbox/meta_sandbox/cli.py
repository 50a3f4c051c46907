"""`meta-sandbox serve`: run the Graph API sandbox until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import yaml

from .app import start
from .sandbox import Sandbox
from .world import build_world, load_spec


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="meta-sandbox", description="Local Meta Marketing API sandbox")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the Graph API sandbox")
    s.add_argument("--port", type=int, default=8765, help="TCP port (0 = pick a free one)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--seed", type=int, default=None, help="world seed (default 1)")
    s.add_argument("--world", default=None, help="world file (YAML or JSON)")
    s.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiplier on job service times and throttle/fault durations (0.01 = 100x faster)",
    )
    return p


async def _serve(args: argparse.Namespace) -> None:
    spec = load_spec(args.world)
    world = build_world(spec, args.seed)
    sandbox = Sandbox(world, args.time_scale)
    runner, port = await start(sandbox, args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"meta-sandbox listening on http://{args.host}:{port} "
        f"(seed {world.seed}, time scale {args.time_scale})",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    except (OSError, ValueError, KeyError, yaml.YAMLError) as exc:
        print(f"meta-sandbox: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
