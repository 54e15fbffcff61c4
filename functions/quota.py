"""The quota function: a tenant reads its plan limits, usage and warnings (X-API-Key)."""

from __future__ import annotations

import flask
import functions_framework

from shared.http import ApiRequest, Reply, Routes, require_tenant, serve
from shared.tenancy import profiles
from shared.tenancy.quota import quota_report

routes = Routes()


def _report(request: ApiRequest, tenant_id: str) -> Reply:
    # Subscription and usage in one statement: a warm-key request is one round trip.
    rows = profiles.tenant_rows(
        request.deps.warehouse, tenant_id, ("tenant_subscriptions", "tenant_usage_quotas")
    )
    subscription = rows["tenant_subscriptions"] or {}
    usage = rows["tenant_usage_quotas"] or {}
    body = {"tenant_id": tenant_id, **quota_report(subscription, usage, request.deps.clock())}
    return Reply(body)


@routes.route("/", methods=["GET"])
def own_quota(request: ApiRequest) -> Reply:
    principal = require_tenant(request)
    return _report(request, principal.tenant_id)


@routes.route("/<tenant_id>", methods=["GET"])
def tenant_quota(request: ApiRequest) -> Reply:
    principal = require_tenant(request, request.args["tenant_id"])
    return _report(request, principal.tenant_id)


@functions_framework.http
def quota(request: flask.Request) -> flask.Response:
    """Plan limits, usage and warnings of the calling tenant."""
    return serve(request, routes, "quota")
