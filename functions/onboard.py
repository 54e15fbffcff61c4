"""The onboard function: an admin creates a tenant (profile, plan, dataset, first API key)."""

from __future__ import annotations

import flask
import functions_framework

from shared.http import ApiRequest, Reply, Routes, require_admin, serve
from shared.tenancy import onboarding

routes = Routes()


@routes.route(
    "/",
    methods=["POST"],
    auth="admin",
    body=onboarding.OnboardRequest,
    response=onboarding.OnboardResponse,
    status=(201, 200),
    errors=(409,),
    idempotency_key=True,
    summary="Onboard a tenant: profile, plan, dataset and its first API key",
)
def create_tenant(request: ApiRequest) -> Reply:
    require_admin(request)
    payload = request.model(onboarding.OnboardRequest)
    idempotency_key = request.idempotency_key()
    result = onboarding.onboard(request.deps, payload, idempotency_key=idempotency_key)
    return Reply(result.body(), status=result.status_code)


@functions_framework.http
def onboard(request: flask.Request) -> flask.Response:
    """Onboard a tenant (X-Admin-Key)."""
    return serve(request, routes, "onboard")
