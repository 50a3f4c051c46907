"""Headless Chromium (Debian's) driven over the DevTools protocol, for the tests that look at a
page as a person would: the HTML report (e2e/test_report_browser.py) and the Dagster UI
(e2e/test_dagster.py).

Chromium comes from Debian (`apt-get install chromium`, which `make browser` runs): installed here
when missing and running as root (CI), else the test fails saying how to install it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator

import aiohttp
import pytest

APT_PACKAGES = ("chromium", "fonts-dejavu-core")


def chromium_path() -> str:
    """Debian's chromium, installed with apt-get (one installer at a time) when missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail(
            "headless Chromium is needed for the browser checks: "
            f"sudo apt-get install -y {' '.join(APT_PACKAGES)}"
        )
    with open(os.path.join(tempfile.gettempdir(), "meta-elt-apt.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not shutil.which("chromium"):
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for command in (
                ["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES],
            ):
                done = subprocess.run(command, env=env, capture_output=True, text=True)
                assert done.returncode == 0, f"{' '.join(command)}: {done.stderr[-2000:]}"
    found = shutil.which("chromium")
    assert found, "apt-get installed chromium but it is not on PATH"
    return found


class DevTools:
    """One page's DevTools session: commands, and the events that arrived in between."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.last_id = 0
        self.events: list[dict] = []

    async def call(self, method: str, **params: object) -> dict:
        self.last_id += 1
        await self.ws.send_json({"id": self.last_id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json()
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    async def evaluate(self, expression: str) -> object:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")


@contextlib.asynccontextmanager
async def page(
    width: int,
    height: int,
    *,
    domains: tuple[str, ...] = ("Page", "Runtime"),
    extra_args: tuple[str, ...] = (),
    timeout: float = 60,
) -> AsyncIterator[DevTools]:
    """A blank page of ``width`` x ``height`` in a fresh headless Chromium, ``domains`` enabled;
    the browser and its profile are gone afterwards."""
    profile = tempfile.mkdtemp(prefix="meta-elt-chromium-")
    process = await asyncio.create_subprocess_exec(
        chromium_path(),
        "--headless",
        "--no-sandbox",  # root in CI
        "--disable-gpu",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        *extra_args,
        f"--window-size={width},{height}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        browser_url = ""
        while not browser_url:
            line = (await asyncio.wait_for(process.stderr.readline(), timeout)).decode()
            if not line:
                raise RuntimeError("chromium exited before its DevTools endpoint was up")
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            browser_url = found[1] if found else ""
        port_match = re.search(r"ws://[^:/]+:(\d+)/", browser_url)
        assert port_match, browser_url
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port_match[1]}/json/list") as answer:
                targets = await answer.json()
            page_ws = next(t for t in targets if t.get("type") == "page")["webSocketDebuggerUrl"]
            async with session.ws_connect(page_ws, max_msg_size=0) as ws:
                tools = DevTools(ws)
                for domain in domains:
                    await tools.call(f"{domain}.enable")
                await tools.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=height,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                yield tools
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        shutil.rmtree(profile, ignore_errors=True)
