"""The costs function: a tenant's cost summaries, top movers and budgets (X-API-Key)."""

from __future__ import annotations

import flask
import functions_framework

from shared.http import ApiRequest, Reply, Routes, require_tenant, serve
from shared.insights import cost_query
from shared.platform.errors import unprocessable

routes = Routes()

_MOVERS_ARGS = {"period", "to", "limit"}


@routes.route("/summary", methods=["GET"])
def summary(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    today = request.deps.clock().date()
    query = cost_query.parse_summary_query(request.raw.args.to_dict(flat=False), today)
    answer = cost_query.cost_summary(request.deps, tenant_id, query)
    return Reply(answer.model_dump(mode="json", by_alias=True))


@routes.route("/top-movers", methods=["GET"])
def top_movers(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    args = request.raw.args
    unknown = sorted(set(args) - _MOVERS_ARGS)
    if unknown:
        raise unprocessable(
            "invalid_argument",
            f"{unknown[0]}: unknown argument; use period, to, limit",
            field=unknown[0],
        )
    days = cost_query.parse_period(args.get("period"))
    end = cost_query.parse_end(args.get("to"), request.deps.clock().date())
    limit = cost_query.parse_limit(args.get("limit"))
    answer = cost_query.top_movers(request.deps, tenant_id, days, end, limit)
    return Reply(answer.model_dump(mode="json"))


@functions_framework.http
def costs(request: flask.Request) -> flask.Response:
    """Cost summaries, top movers and budgets of the calling tenant."""
    return serve(request, routes, "costs")
