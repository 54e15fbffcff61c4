"""The audit function: a tenant's audit trail, filtered and cursor-paginated (X-API-Key)."""

from __future__ import annotations

import flask
import functions_framework

from shared.http import ApiRequest, Reply, Routes, parse_model, require_tenant, serve
from shared.tenancy.audit_trail import AuditFilters, list_entries
from shared.tenancy.roles import Role

routes = Routes()


@routes.route(
    "/",
    methods=["GET"],
    role=Role.ADMIN,
    auth="tenant",
    query=AuditFilters,
    errors=(400,),
    summary="The audit trail, newest first, cursor-paginated",
)
def list_audit(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    filters = parse_model(AuditFilters, request.raw.args.to_dict())
    return Reply(list_entries(request.deps.warehouse, tenant_id, filters))


@functions_framework.http
def audit(request: flask.Request) -> flask.Response:
    """Who changed what, when, with which outcome: OWNER and ADMIN only."""
    return serve(request, routes, "audit")
