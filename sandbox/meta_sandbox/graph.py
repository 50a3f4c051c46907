"""Graph API request handling, independent of the HTTP framework (used by app.py and batch)."""

from __future__ import annotations

import base64
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from . import errors
from .errors import GraphError
from .faults import RATE_LIMIT_CODES
from .insights import QueryResult, parse_query
from .jobs import COMPLETED, FAILED, SKIPPED, Job
from .object_fields import NODE_FIELDS
from .params import field_names, json_list
from .sandbox import Sandbox
from .world import Account, Ad, AdSet, Campaign, Token

DEFAULT_LIMIT = 25
BATCH_MAX = 50
API_VERSION_PREFIX = "v"


@dataclass
class GraphRequest:
    method: str
    parts: list[str]  # path segments after the version
    params: dict[str, str]
    token: str | None
    token_in_params: bool
    base_url: str  # scheme://host[:port]
    version: str  # e.g. "v23.0" ("" if unversioned)


@dataclass
class GraphResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Ctx:
    """What a request resolved to (for stats, throttle headers)."""

    endpoint: str = "?"
    account: str | None = None
    usage_kind: str = "ads_management"
    eta_override: float | None = None


def _fmt_time(dt: datetime | None, account: Account) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(account.tz).strftime("%Y-%m-%dT%H:%M:%S%z")


def _encode_cursor(n: int) -> str:
    return base64.urlsafe_b64encode(f"sandbox-cursor:{n}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, n = raw.partition(":")
        if prefix != "sandbox-cursor":
            raise ValueError(cursor)
        return int(n)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.invalid_param("Invalid cursor") from exc


class GraphHandler:
    """Dispatches Graph requests against a Sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        self.world = sandbox.world

    # ------------------------------------------------------------------ entry point
    async def handle(self, req: GraphRequest) -> GraphResponse:
        ctx = _Ctx(endpoint=self._label(req))
        sb = self.sb
        try:
            if not req.parts and req.method == "POST" and "batch" in req.params:
                ctx.endpoint = "POST /(batch)"
                resp = await self._batch(req)
            else:
                code = sb.faults.http_500()
                if code is not None:
                    raise errors.unknown_error_500(code)
                token = self._auth(req)
                resp = await self._route(req, token, ctx)
        except GraphError as exc:
            resp = GraphResponse(exc.status, exc.body(sb.trace_id()), dict(exc.headers))
            if exc.code in RATE_LIMIT_CODES:
                sb.counters.count_throttled(exc.code)
        running = sb.jobs.running(ctx.account) if ctx.account else 0
        headers = sb.throttle.headers(
            ctx.account,
            running,
            ctx.usage_kind,
            unfinished_jobs=sb.jobs.unfinished(ctx.account) if ctx.account else 0,
            app_unfinished_jobs=sb.jobs.unfinished(),
        )
        if ctx.eta_override is not None and ctx.account:
            usage = json.loads(headers["x-business-use-case-usage"])
            for item in next(iter(usage.values())):
                item["estimated_time_to_regain_access"] = math.ceil(ctx.eta_override / 60.0)
                item["call_count"] = 100
            headers["x-business-use-case-usage"] = json.dumps(usage)
        headers.update(resp.headers)
        headers.setdefault("x-fb-trace-id", sb.trace_id())
        headers.setdefault("x-fb-rev", "1019999999")
        resp.headers = headers
        sb.counters.count(ctx.endpoint, resp.status)
        return resp

    def _label(self, req: GraphRequest) -> str:
        labels = []
        for i, part in enumerate(req.parts):
            if i == 0:
                labels.append(self._kind_label(part))
            else:
                labels.append(part)
        return f"{req.method} /" + "/".join(labels)

    def _kind_label(self, node: str) -> str:
        if node == "me":
            return "me"
        if node.startswith("act_"):
            return "{account}"
        for kind, table in (
            ("campaign", self.world.campaigns),
            ("adset", self.world.adsets),
            ("ad", self.world.ads),
            ("report_run", self.sb.jobs.jobs),
        ):
            if node in table:
                return "{" + kind + "}"
        return "{unknown}"

    def _auth(self, req: GraphRequest) -> Token:
        if not req.token:
            raise errors.missing_token()
        token = self.world.tokens.get(req.token)
        if token is None:
            raise errors.invalid_token()
        expired = self.sb.faults.token_expired_at(req.token, self.sb.clock.now)
        if expired is not None:
            raise errors.expired_token(expired, self.sb.clock.now)
        return token

    def _check_account(self, token: Token, account: str) -> None:
        revoked = self.sb.faults.revoked(token.token, account)
        if revoked is not None:
            raise errors.no_permission(account, revoked)
        if account not in token.accounts:
            raise errors.no_permission(account)

    def _gate(self, ctx: _Ctx, cost: float) -> None:
        """Rate limits (fault rules, then the throttle model); charges the call."""
        sb = self.sb
        nominal = sb.throttle.now()
        hit = sb.faults.rate_limit(ctx.account, nominal)
        if hit is not None:
            code, left = hit
            ctx.eta_override = left
            raise errors.rate_limited(code)
        running = sb.jobs.running(ctx.account) if ctx.account else 0
        blocked = sb.throttle.blocked(ctx.account, running)
        if blocked is not None:
            scope, left = blocked
            ctx.eta_override = left
            if scope == "app":
                raise errors.rate_limited(4)
            raise errors.rate_limited(80000 if ctx.usage_kind == "ads_insights" else 80004)
        sb.throttle.charge(ctx.account, cost, running)

    def _job_gate(self, ctx: _Ctx) -> None:
        """A new async job is refused while the account's (or the app's) unfinished jobs fill
        its insights capacity: 80000 (account) or 4 (app), as a rate limit."""
        sb, limits = self.sb, self.sb.world.limits
        account = ctx.account
        assert account is not None
        if sb.jobs.unfinished() >= limits.app_job_slots:
            ctx.eta_override = limits.job_base_seconds
            raise errors.rate_limited(4)
        if sb.jobs.unfinished(account) >= limits.account_job_slots:
            # Access returns when the first running job finishes (Meta says it in minutes).
            wait = sb.jobs.next_slot_seconds(account) / sb.time_scale
            ctx.eta_override = wait or limits.job_base_seconds
            raise errors.rate_limited(80000)

    # ------------------------------------------------------------------ routing
    async def _route(self, req: GraphRequest, token: Token, ctx: _Ctx) -> GraphResponse:
        parts, method = req.parts, req.method
        if not parts:
            raise errors.unknown_object("", method.lower())
        node, edge = parts[0], (parts[1] if len(parts) > 1 else None)
        if len(parts) > 2:
            raise errors.unknown_object("/".join(parts), method.lower())
        w = self.world
        if node == "me":
            self._gate(ctx, 1)
            if edge is None and method == "GET":
                return GraphResponse(200, self._me(token, req.params))
            if edge == "adaccounts" and method == "GET":
                accounts = [w.accounts[a] for a in token.accounts]
                accounts = [
                    a for a in accounts if self.sb.faults.revoked(token.token, a.id) is None
                ]
                items = [
                    self._select(
                        self._account_fields(a), req.params, ("account_id", "id"), "AdAccount"
                    )
                    for a in accounts
                ]
                return GraphResponse(200, self._page(items, req))
            raise errors.nonexisting_field(edge or method, "User")
        obj: Any
        if node.startswith("act_"):
            obj = w.accounts.get(node)
            kind = "account"
        elif node in w.campaigns:
            obj, kind = w.campaigns[node], "campaign"
        elif node in w.adsets:
            obj, kind = w.adsets[node], "adset"
        elif node in w.ads:
            obj, kind = w.ads[node], "ad"
        elif node in self.sb.jobs.jobs:
            obj, kind = self.sb.jobs.jobs[node], "report_run"
        else:
            obj, kind = None, ""
        if obj is None:
            raise errors.unknown_object(node, method.lower())
        if kind == "account":
            account_id = obj.id
        elif kind == "report_run":
            account_id = obj.account_id
        else:
            account_id = "act_" + obj.account_id
        ctx.account = account_id
        self._check_account(token, account_id)
        account = w.accounts[account_id]
        if edge == "insights" or kind == "report_run":
            ctx.usage_kind = "ads_insights"
        if kind == "report_run":
            if method != "GET":
                raise errors.unknown_object(node, method.lower())
            self._gate(ctx, 1)
            if edge is None:
                return GraphResponse(
                    200, self._select(obj.describe(), req.params, None, "AdReportRun")
                )
            if edge != "insights":
                raise errors.nonexisting_field(edge, "AdReportRun")
            return self._job_results(obj, req)
        if edge == "insights":
            if method == "POST":
                self._gate(ctx, 5)
                self._job_gate(ctx)
                return await self._insights_async(req, account, kind, node)
            if method == "GET":
                self._gate(ctx, 2)
                return await self._insights_sync(req, account, kind, node)
            raise errors.unknown_object(node, method.lower())
        if method != "GET":
            raise errors.unknown_object(node, method.lower())
        self._gate(ctx, 1)
        if edge is None:
            fields = self._fields_of(kind, obj, account)
            node_type = {
                "account": "AdAccount",
                "campaign": "Campaign",
                "adset": "AdSet",
                "ad": "Ad",
            }[kind]
            default = ("id", "account_id") if kind == "account" else ("id",)
            return GraphResponse(200, self._select(fields, req.params, default, node_type))
        return self._list_edge(req, account, kind, obj, edge)

    # ------------------------------------------------------------------ nodes and edges
    def _me(self, token: Token, params: dict[str, str]) -> dict[str, Any]:
        fields = {"id": token.user_id, "name": token.user_name}
        return self._select(fields, params, ("id", "name"), "User")

    def _select(
        self,
        values: dict[str, Any],
        params: dict[str, str],
        default: tuple[str, ...] | None,
        node_type: str,
    ) -> dict[str, Any]:
        names = field_names(params.get("fields"))
        if not names:
            if default is None:
                return values
            names = list(default)
        out = {}
        for name in names:
            if name not in values:
                if name in NODE_FIELDS.get(node_type, ()):
                    continue  # a field Meta publishes but the sandbox does not model: omitted
                raise errors.nonexisting_field(name, node_type)
            if values[name] is not None:
                out[name] = values[name]
        if "id" in values and "id" not in out:
            out["id"] = values["id"]
        return out

    def _account_fields(self, a: Account) -> dict[str, Any]:
        offset = a.tz.utcoffset(self.sb.clock.now.replace(tzinfo=None))
        return {
            "id": a.id,
            "account_id": a.account_id,
            "name": a.name,
            "currency": a.currency,
            "timezone_name": a.timezone_name,
            "timezone_offset_hours_utc": (offset.total_seconds() / 3600) if offset else 0,
            "account_status": 1,
            "disable_reason": 0,
            "created_time": _fmt_time(a.created_time, a),
            "business_country_code": a.countries[0],
            "amount_spent": "0",
            "balance": "0",
            "spend_cap": "0",
            "is_personal": 0,
            "age": round((self.sb.clock.now - a.created_time).total_seconds() / 86400, 4),
        }

    def _fields_of(self, kind: str, obj: Any, a: Account) -> dict[str, Any]:
        if kind == "account":
            return self._account_fields(obj)
        common = {
            "id": obj.id,
            "account_id": obj.account_id,
            "name": obj.name,
            "status": obj.status,
            "configured_status": obj.status,
            "effective_status": obj.effective_status,
            "created_time": _fmt_time(obj.created_time, a),
            "updated_time": _fmt_time(obj.updated_time, a),
        }
        if isinstance(obj, Campaign):
            common.update(
                objective=obj.objective,
                buying_type=obj.buying_type,
                start_time=_fmt_time(obj.start_time, a),
                stop_time=_fmt_time(obj.stop_time, a),
                daily_budget=str(obj.daily_budget_cents),
                lifetime_budget="0",
                budget_remaining=str(obj.daily_budget_cents),
                bid_strategy="LOWEST_COST_WITHOUT_CAP",
                special_ad_categories=[],
            )
        elif isinstance(obj, AdSet):
            common.update(
                campaign_id=obj.campaign_id,
                optimization_goal=obj.optimization_goal,
                billing_event="IMPRESSIONS",
                bid_strategy="LOWEST_COST_WITHOUT_CAP",
                destination_type="WEBSITE",
                lifetime_budget="0",
                budget_remaining=str(obj.daily_budget_cents),
                targeting={
                    "age_min": 18,
                    "age_max": 65,
                    "geo_locations": {"countries": list(a.countries)},
                },
                start_time=_fmt_time(obj.start_time, a),
                end_time=_fmt_time(obj.end_time, a),
                daily_budget=str(obj.daily_budget_cents),
            )
        elif isinstance(obj, Ad):
            common.update(
                campaign_id=obj.campaign_id,
                adset_id=obj.adset_id,
                creative={"id": obj.creative_id},
            )
        return common

    def _list_edge(
        self, req: GraphRequest, account: Account, kind: str, obj: Any, edge: str
    ) -> GraphResponse:
        node_types = {"campaigns": "Campaign", "adsets": "AdSet", "ads": "Ad"}
        allowed = {
            "account": ("campaigns", "adsets", "ads"),
            "campaign": ("adsets", "ads"),
            "adset": ("ads",),
        }.get(kind, ())
        if edge not in allowed:
            raise errors.nonexisting_field(edge, {"account": "AdAccount"}.get(kind, kind.title()))
        edges: dict[str, list[Any]] = {
            "campaigns": account.campaigns,
            "adsets": account.adsets,
            "ads": account.ads,
        }
        items = edges[edge]
        if kind == "campaign":
            items = [i for i in items if i.campaign_id == obj.id]
        elif kind == "adset":
            items = [i for i in items if i.adset_id == obj.id]
        statuses = None
        if req.params.get("effective_status"):
            statuses = set(json_list(req.params["effective_status"], "effective_status"))
        filters = json_list(req.params.get("filtering") or "[]", "filtering")
        for f in filters:
            if not isinstance(f, dict) or not {"field", "operator"} <= set(f):
                raise errors.invalid_param("Each filtering item needs field, operator and value")
            if f["field"] == "effective_status" and f["operator"] == "IN":
                statuses = set(f.get("value") or [])
        if statuses is None:
            statuses = {
                s for s in _ALL_STATUSES if s not in ("ARCHIVED", "DELETED")
            }  # Meta's default excludes archived and deleted objects
        items = [i for i in items if i.effective_status in statuses]
        for f in filters:
            items = [i for i in items if _edge_filter(f, i)]
        items.sort(key=lambda i: (i.created_time, i.id), reverse=True)
        node_type = node_types[edge]
        rows = [
            self._select(self._fields_of(edge[:-1], i, account), req.params, ("id",), node_type)
            for i in items
        ]
        body = self._page(rows, req)
        if str(req.params.get("summary", "")).lower() in ("true", "1", "total_count"):
            body["summary"] = {"total_count": len(rows)}
        return GraphResponse(200, body)

    # ------------------------------------------------------------------ paging
    def _page(
        self, items: list[Any] | QueryResult, req: GraphRequest, default_limit: int = DEFAULT_LIMIT
    ) -> dict[str, Any]:
        p = req.params
        try:
            limit = int(p.get("limit") or default_limit)
        except ValueError as exc:
            raise errors.invalid_param("Param limit must be an integer") from exc
        limit = max(1, min(limit, self.world.limits.page_max_limit))
        if p.get("after"):
            start = _decode_cursor(p["after"])
        elif p.get("before"):
            start = max(0, _decode_cursor(p["before"]) - limit)
        else:
            start = 0
        if start < 0 or start > len(items):
            raise errors.invalid_param("Invalid cursor")
        data = items[start : start + limit]
        body: dict[str, Any] = {"data": data}
        if not data:
            return body
        paging: dict[str, Any] = {
            "cursors": {"before": _encode_cursor(start), "after": _encode_cursor(start + len(data))}
        }
        if start + len(data) < len(items):
            paging["next"] = self._url(req, after=_encode_cursor(start + len(data)))
        if start > 0:
            paging["previous"] = self._url(req, before=_encode_cursor(start))
        body["paging"] = paging
        return body

    def _url(self, req: GraphRequest, **cursor: str) -> str:
        params = {k: v for k, v in req.params.items() if k not in ("after", "before")}
        if not req.token_in_params:
            params.pop("access_token", None)
        params.update(cursor)
        path = "/".join(([req.version] if req.version else []) + req.parts)
        return f"{req.base_url}/{path}?{urlencode(params)}"

    # ------------------------------------------------------------------ insights
    def _query(self, req: GraphRequest, account: Account, kind: str, node: str):
        q = parse_query(req.params, account, kind, node, self.sb.clock.now)
        since, until = q.span
        mode = self.sb.faults.too_big(account.id, since, until, q.filtered_object_ids())
        return q, mode

    async def _insights_sync(
        self, req: GraphRequest, account: Account, kind: str, node: str
    ) -> GraphResponse:
        q, mode = self._query(req, account, kind, node)
        if mode == "error_1487534":
            raise errors.too_much_data()
        if mode is not None:
            raise errors.reduce_data_500()
        rows = await self.sb.compute_cached(q)
        if len(rows) > self.world.limits.sync_max_rows:
            raise errors.reduce_data_500()
        body = self._page(rows, req)
        self.sb.counters.rows_served += len(body["data"])
        return GraphResponse(200, body)

    async def _insights_async(
        self, req: GraphRequest, account: Account, kind: str, node: str
    ) -> GraphResponse:
        q, mode = self._query(req, account, kind, node)
        if mode == "error_1487534":
            raise errors.too_much_data()
        if mode == "error_500":
            raise errors.reduce_data_500()
        faults = self.sb.faults
        job = Job(
            id=self.sb.new_job_id(),
            account_id=account.id,
            query=q,
            created_at=self.sb.clock.now,
            created_wall=time.monotonic(),
        )
        if mode == "job_failed":
            job.fail_reason = "too_big"
        elif faults.take("hang_jobs", account.id):
            job.hang = True
        elif faults.take("fail_jobs", account.id):
            job.fail_reason = "fault"
        elif faults.take("skip_jobs", account.id):
            job.skip = True
        self.sb.jobs.submit(job)
        return GraphResponse(200, {"report_run_id": job.id})

    def _job_results(self, job: Job, req: GraphRequest) -> GraphResponse:
        if job.status in (FAILED, SKIPPED):
            raise errors.report_failed()
        if job.status != COMPLETED or job.rows is None:
            raise errors.report_not_ready()
        early = self.sb.faults.early_fetch(job.account_id)
        if early is not None:
            raise errors.report_not_ready() if early else errors.report_failed()
        body = self._page(job.rows, req)
        self.sb.counters.rows_served += len(body["data"])
        return GraphResponse(200, body)

    # ------------------------------------------------------------------ batch
    async def _batch(self, req: GraphRequest) -> GraphResponse:
        items = json_list(req.params["batch"], "batch")
        if len(items) > BATCH_MAX:
            raise errors.invalid_param(
                f"Too many requests in batch message. Maximum batch size is {BATCH_MAX}"
            )
        out = []
        for item in items:
            if not isinstance(item, dict) or "relative_url" not in item:
                raise errors.invalid_param("Each batch item needs method and relative_url")
            url = urlsplit(str(item["relative_url"]))
            parts = [p for p in url.path.split("/") if p]
            version = req.version
            if parts and parts[0].startswith(API_VERSION_PREFIX) and parts[0][1:2].isdigit():
                version = parts.pop(0)
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            if item.get("body"):
                params.update(parse_qsl(str(item["body"]), keep_blank_values=True))
            token_in_params = "access_token" in params or req.token_in_params
            sub = GraphRequest(
                method=str(item.get("method", "GET")).upper(),
                parts=parts,
                params={
                    **({"access_token": req.token or ""} if req.token_in_params else {}),
                    **params,
                },
                token=params.get("access_token") or req.token,
                token_in_params=token_in_params,
                base_url=req.base_url,
                version=version,
            )
            resp = await self.handle(sub)
            out.append(
                {
                    "code": resp.status,
                    "headers": [{"name": k, "value": v} for k, v in resp.headers.items()],
                    "body": json.dumps(resp.body, ensure_ascii=False),
                }
            )
        return GraphResponse(200, out)


_ALL_STATUSES = (
    "ACTIVE",
    "PAUSED",
    "DELETED",
    "ARCHIVED",
    "CAMPAIGN_PAUSED",
    "ADSET_PAUSED",
    "CAMPAIGN_ARCHIVED",
    "IN_PROCESS",
    "WITH_ISSUES",
    "PENDING_REVIEW",
    "DISAPPROVED",
)


def _edge_filter(f: dict[str, Any], obj: Any) -> bool:
    fld, op, value = str(f["field"]), str(f["operator"]).upper(), f.get("value")
    attr = fld.split(".")[-1]
    if fld == "effective_status":
        return True  # handled above
    if attr in ("updated_time", "created_time"):
        actual: Any = getattr(obj, attr).timestamp()
        target: Any = float(str(value))  # unix seconds
    elif attr in ("id", "name", "status", "campaign_id", "adset_id"):
        if fld in ("campaign.id", "adset.id"):
            attr = fld.replace(".", "_")
        actual = str(getattr(obj, attr, ""))
        target = value
    else:
        raise errors.invalid_param(
            f"Filtering field '{fld}' with operation '{op}' is not supported"
        )
    if op == "GREATER_THAN":
        return actual > target
    if op == "LESS_THAN":
        return actual < target
    if op in ("IN", "NOT_IN"):
        vals = {str(v) for v in (value if isinstance(value, list) else [value])}
        return (actual in vals) == (op == "IN")
    if op == "EQUAL":
        return actual == str(target)
    if op == "NOT_EQUAL":
        return actual != str(target)
    if op == "CONTAIN":
        return str(target).lower() in str(actual).lower()
    raise errors.invalid_param(f"Filtering field '{fld}' with operation '{op}' is not supported")
