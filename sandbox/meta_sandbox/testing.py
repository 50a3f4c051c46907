"""`SandboxServer`: run the sandbox in a background thread (for tests, benchmarks, demos).

with SandboxServer(seed=1, world=None, time_scale=0.001) as sb:
    sb.base_url      # "http://127.0.0.1:<port>"; Graph paths under /v23.0/...
    sb.world(); sb.stats(); sb.truth(account=..., level=..., since=..., until=...)
    sb.add_fault({...}); sb.clear_faults(); sb.set_clock(iso); sb.advance_clock(days=1)
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .app import start
from .sandbox import Sandbox
from .world import build_world, load_spec


class SandboxServer:
    """Context manager running a sandbox server on a free port in a daemon thread."""

    def __init__(
        self,
        seed: int = 1,
        world: None | dict[str, Any] | str | Path = None,
        time_scale: float = 0.001,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.sandbox = Sandbox(build_world(load_spec(world), seed), time_scale)
        self.host = host
        self.port = port
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._run, name="meta-sandbox", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError("sandbox failed to start") from self._error
        if not self._ready.is_set():
            raise RuntimeError("sandbox did not start within 30 s")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        runner, port = await start(self.sandbox, self.host, self.port)
        self.port = port
        self.base_url = f"http://{self.host}:{port}"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ admin API
    @property
    def graph_url(self) -> str:
        """Base URL with a version, e.g. http://127.0.0.1:PORT/v23.0."""
        return f"{self.base_url}/v23.0"

    def _admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.base_url}/__sandbox/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data else {},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"admin {method} {path}: {exc.code} {exc.read()!r}") from exc

    def world(self) -> dict[str, Any]:
        return self._admin("GET", "world")

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "stats")

    def reset_stats(self) -> dict[str, Any]:
        return self._admin("POST", "stats/reset")

    def truth(
        self,
        account: str,
        level: str,
        since: str,
        until: str,
        breakdowns: list[str] | tuple[str, ...] | str | None = None,
        windows: list[str] | tuple[str, ...] | str | None = None,
    ) -> list[dict[str, Any]]:
        """The exact per-object, per-day rows (time_increment=1) the API would return now."""
        params = {"account": account, "level": level, "since": str(since), "until": str(until)}
        for name, value in (("breakdowns", breakdowns), ("windows", windows)):
            if value:
                params[name] = value if isinstance(value, str) else ",".join(value)
        return self._admin("GET", "truth?" + urllib.parse.urlencode(params))["data"]

    def add_fault(self, rule: dict[str, Any]) -> str:
        return self._admin("POST", "faults", rule)["id"]

    def faults(self) -> list[dict[str, Any]]:
        """The active rules, each with how often it has ``fired``."""
        return self._admin("GET", "faults")["faults"]

    def clear_faults(self) -> None:
        self._admin("DELETE", "faults")

    def restate(self, **rule: str) -> dict[str, Any]:
        """Remove delivery retroactively: ``restate(ad=id, since=..., until=...)`` (or adset,
        campaign, account; no dates: every day). See README "Admin API"."""
        return self._admin("POST", "restate", rule)

    def set_clock(self, iso: str) -> str:
        return self._admin("POST", "clock", {"now": iso})["now"]

    def advance_clock(self, days: float = 0, seconds: float = 0) -> str:
        return self._admin("POST", "clock", {"advance_days": days, "advance_seconds": seconds})[
            "now"
        ]

    def jobs(self) -> list[dict[str, Any]]:
        return self._admin("GET", "jobs")["jobs"]
