"""aiohttp application: Graph routes (/vNN.0/...) and the admin API."""

from __future__ import annotations

import json
import re

from aiohttp import web

from . import admin
from .admin import SANDBOX
from .graph import GraphHandler, GraphRequest
from .sandbox import Sandbox

VERSION_RE = re.compile(r"^v\d+\.\d+$")
HANDLER = web.AppKey("graph_handler", GraphHandler)


async def _params(request: web.Request) -> dict[str, str]:
    params = dict(request.query)
    if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError:
                body = {}
            if isinstance(body, dict):
                params.update(
                    {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
                )
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def _token(request: web.Request, params: dict[str, str]) -> tuple[str | None, bool]:
    if params.get("access_token"):
        return params["access_token"], True
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip(), False
    return None, False


async def graph(request: web.Request) -> web.Response:
    parts = [p for p in request.match_info["tail"].split("/") if p]
    version = ""
    if parts and VERSION_RE.match(parts[0]):
        version = parts.pop(0)
    params = await _params(request)
    token, in_params = _token(request, params)
    req = GraphRequest(
        method=request.method,
        parts=parts,
        params=params,
        token=token,
        token_in_params=in_params,
        base_url=f"{request.scheme}://{request.host}",
        version=version,
    )
    resp = await request.app[HANDLER].handle(req)
    return web.Response(
        text=json.dumps(resp.body),
        status=resp.status,
        headers=resp.headers,
        content_type="application/json",
        charset="UTF-8",
    )


def create_app(sandbox: Sandbox) -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[SANDBOX] = sandbox
    app[HANDLER] = GraphHandler(sandbox)
    admin.add_routes(app)
    app.router.add_route("*", "/{tail:.*}", graph)

    async def _close(_: web.Application) -> None:
        await sandbox.close()

    app.on_cleanup.append(_close)
    return app


async def start(
    sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (call `await runner.cleanup()`) and the bound port."""
    runner = web.AppRunner(create_app(sandbox), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, bound
