"""The quota function: a tenant reads its limits, usage, running runs and warnings (X-API-Key)."""

from __future__ import annotations

import flask
import functions_framework

from shared.http import ApiRequest, Reply, Routes, require_tenant, serve
from shared.platform.errors import not_found
from shared.tenancy.quota import QuotaReport, quota_report, usage_snapshot
from shared.tenancy.roles import Role

routes = Routes()


def _report(request: ApiRequest, tenant_id: str) -> Reply:
    now = request.deps.clock()
    snapshot = usage_snapshot(request.deps.warehouse, tenant_id, now)
    if snapshot is None:
        raise not_found("no subscription for this tenant")
    return Reply({"tenant_id": tenant_id, **quota_report(snapshot, now)})


@routes.route(
    "/",
    methods=["GET"],
    role=Role.VIEWER,
    auth="tenant",
    response=QuotaReport,
    errors=(404,),
    summary="The caller's quota",
)
def own_quota(request: ApiRequest) -> Reply:
    principal = require_tenant(request)
    return _report(request, principal.tenant_id)


@routes.route(
    "/<tenant_id>",
    methods=["GET"],
    role=Role.VIEWER,
    auth="tenant",
    response=QuotaReport,
    summary="A tenant's quota (own id only)",
)
def tenant_quota(request: ApiRequest) -> Reply:
    principal = require_tenant(request, request.args["tenant_id"])
    return _report(request, principal.tenant_id)


@functions_framework.http
def quota(request: flask.Request) -> flask.Response:
    """Plan limits, usage, running runs and warnings of the calling tenant."""
    return serve(request, routes, "quota")
