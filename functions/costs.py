"""The costs function: a tenant's cost summaries, top movers and budgets (X-API-Key)."""

from __future__ import annotations

import flask
import functions_framework

from shared.http import ApiRequest, Reply, Routes, require_tenant, serve
from shared.insights import budgets, cost_query
from shared.insights.budgets import BudgetFields, BudgetPatch
from shared.platform.errors import unprocessable
from shared.tenancy.roles import Role

routes = Routes()

_MOVERS_ARGS = {"period", "to", "limit"}


@routes.route(
    "/summary",
    methods=["GET"],
    role=Role.VIEWER,
    auth="tenant",
    response=cost_query.SummaryResponse,
    errors=(422,),  # bad query arguments (no body, so not declared by a body model)
    summary="Totals and daily series per currency (from, to, group_by, <dimension>=value)",
)
def summary(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    today = request.deps.clock().date()
    query = cost_query.parse_summary_query(request.raw.args.to_dict(flat=False), today)
    answer = cost_query.cost_summary(request.deps, tenant_id, query)
    return Reply(answer.model_dump(mode="json", by_alias=True))


@routes.route(
    "/top-movers",
    methods=["GET"],
    role=Role.VIEWER,
    auth="tenant",
    response=cost_query.MoversResponse,
    errors=(422,),
    summary="Services and sub-accounts whose cost changed most against the previous period",
)
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


@routes.route(
    "/budgets",
    methods=["POST"],
    role=Role.EDITOR,
    auth="tenant",
    body=BudgetFields,
    status=(201, 200),
    errors=(409,),
    idempotency_key=True,
    summary="Create a monthly budget",
)
def create_budget(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    fields = request.model(BudgetFields)
    key = request.idempotency_key()
    budget, created = budgets.create_budget(request.deps, tenant_id, fields, key)
    return Reply(budget, status=201 if created else 200)


@routes.route("/budgets", methods=["GET"], role=Role.VIEWER, auth="tenant", summary="Budgets")
def list_budgets(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply({"budgets": budgets.list_budgets(request.deps, tenant_id)})


@routes.route(
    "/budgets/<budget_id>", methods=["GET"], role=Role.VIEWER, auth="tenant", summary="A budget"
)
def get_budget(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply(budgets.get_budget(request.deps, tenant_id, request.args["budget_id"]))


@routes.route(
    "/budgets/<budget_id>",
    methods=["PUT"],
    role=Role.EDITOR,
    auth="tenant",
    body=BudgetFields,
    summary="Replace a budget",
)
def replace_budget(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    fields = request.model(BudgetFields)
    budget_id = request.args["budget_id"]
    return Reply(budgets.replace_budget(request.deps, tenant_id, budget_id, fields))


@routes.route(
    "/budgets/<budget_id>",
    methods=["PATCH"],
    role=Role.EDITOR,
    auth="tenant",
    body=BudgetPatch,
    summary="Change some fields of a budget",
)
def patch_budget(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    patch = request.model(BudgetPatch)
    budget_id = request.args["budget_id"]
    return Reply(budgets.patch_budget(request.deps, tenant_id, budget_id, patch))


@routes.route(
    "/budgets/<budget_id>",
    methods=["DELETE"],
    role=Role.EDITOR,
    auth="tenant",
    summary="Delete a budget",
)
def delete_budget(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply(budgets.delete_budget(request.deps, tenant_id, request.args["budget_id"]))


@functions_framework.http
def costs(request: flask.Request) -> flask.Response:
    """Cost summaries, top movers and budgets of the calling tenant."""
    return serve(request, routes, "costs")
