"""Admin API under /__sandbox/ (not part of Graph; no token needed)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from aiohttp import web

from .insights import LEVELS, WINDOW_NAMES, truth_query
from .metrics import SUPPORTED_BREAKDOWNS
from .params import csv_values
from .sandbox import Sandbox
from .world import act_id

SANDBOX = web.AppKey("sandbox", Sandbox)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(body), status=status, content_type="application/json", charset="utf-8"
    )


def _bad(message: str) -> web.Response:
    return _json({"error": {"message": message}}, 400)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        value = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"invalid JSON body: {exc}") from exc
    if not isinstance(value, dict):
        raise web.HTTPBadRequest(text="JSON body must be an object")
    return value


async def world(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX]
    body = sb.world.describe()
    body["now"] = sb.clock.now.isoformat().replace("+00:00", "Z")
    body["time_scale"] = sb.time_scale
    return _json(body)


async def stats(request: web.Request) -> web.Response:
    return _json(request.app[SANDBOX].stats())


async def stats_reset(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX]
    sb.reset_stats()
    return _json(sb.stats())


async def truth(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX]
    q = request.query
    account_id = act_id(q["account"]) if q.get("account") else ""
    account = sb.world.accounts.get(account_id)
    if account is None:
        return _bad(f"unknown account {account_id!r}")
    level = q.get("level", "ad")
    if level not in LEVELS:
        return _bad(f"level must be one of {LEVELS}")
    try:
        since, until = date.fromisoformat(q["since"]), date.fromisoformat(q["until"])
    except (KeyError, ValueError):
        return _bad("since and until (YYYY-MM-DD) are required")
    breakdowns = tuple(csv_values(q.get("breakdowns")))
    windows = tuple(csv_values(q.get("windows")))
    if any(b not in SUPPORTED_BREAKDOWNS for b in breakdowns):
        return _bad(f"breakdowns must be among {SUPPORTED_BREAKDOWNS}")
    if any(w not in (*WINDOW_NAMES, "1d_ev", "dda") for w in windows):
        return _bad(f"windows must be among {WINDOW_NAMES}")
    fields = tuple(csv_values(q.get("fields"))) or None
    query = truth_query(account, level, since, until, breakdowns, windows, fields)
    result, _ = await sb.compute(query)
    return _json(
        {"data": result.all_rows(), "now": sb.clock.now.isoformat().replace("+00:00", "Z")}
    )


async def faults_add(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX]
    try:
        fault = sb.faults.add(await _body(request), sb.clock.now, sb.throttle.now())
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))
    return _json({"id": fault.id, "fault": fault.describe()})


async def faults_list(request: web.Request) -> web.Response:
    return _json({"faults": [f.describe() for f in request.app[SANDBOX].faults.rules]})


async def faults_clear(request: web.Request) -> web.Response:
    request.app[SANDBOX].faults.clear()
    return _json({"faults": []})


async def restate(request: web.Request) -> web.Response:
    try:
        done = request.app[SANDBOX].restate(await _body(request))
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))
    return _json(done)


async def restatements(request: web.Request) -> web.Response:
    return _json({"restatements": request.app[SANDBOX].restatements})


async def clock_get(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX]
    return _json({"now": sb.clock.now.isoformat().replace("+00:00", "Z")})


async def clock_set(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX]
    body = await _body(request)
    try:
        if body.get("now"):
            sb.clock.set(str(body["now"]))
        else:
            sb.clock.advance(
                days=float(body.get("advance_days", 0)),
                seconds=float(body.get("advance_seconds", 0)),
            )
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))
    sb.clock_changed()
    return await clock_get(request)


async def jobs(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX]
    return _json({"jobs": [j.describe() for j in sb.jobs.jobs.values()]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/__sandbox/world", world)
    app.router.add_get("/__sandbox/stats", stats)
    app.router.add_post("/__sandbox/stats/reset", stats_reset)
    app.router.add_get("/__sandbox/truth", truth)
    app.router.add_get("/__sandbox/faults", faults_list)
    app.router.add_post("/__sandbox/faults", faults_add)
    app.router.add_delete("/__sandbox/faults", faults_clear)
    app.router.add_get("/__sandbox/restate", restatements)
    app.router.add_post("/__sandbox/restate", restate)
    app.router.add_get("/__sandbox/clock", clock_get)
    app.router.add_post("/__sandbox/clock", clock_set)
    app.router.add_get("/__sandbox/jobs", jobs)
