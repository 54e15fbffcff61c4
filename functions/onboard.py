"""The onboard function: an admin creates a tenant (profile, plan, dataset, first API key)."""

from __future__ import annotations

import re

import flask
import functions_framework

from shared.http import ApiRequest, Reply, Routes, require_admin, serve
from shared.platform.errors import bad_request
from shared.tenancy import onboarding

routes = Routes()
_IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,255}$")


@routes.route("/", methods=["POST"])
def create_tenant(request: ApiRequest) -> Reply:
    require_admin(request)
    payload = request.model(onboarding.OnboardRequest)
    idempotency_key = request.header("Idempotency-Key")
    if idempotency_key is not None and not _IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-255 characters of letters, digits and . _ : -",
            field="Idempotency-Key",
        )
    result = onboarding.onboard(request.deps, payload, idempotency_key=idempotency_key)
    return Reply(result.body(), status=result.status_code)


@functions_framework.http
def onboard(request: flask.Request) -> flask.Response:
    """Onboard a tenant (X-Admin-Key)."""
    return serve(request, routes, "onboard")
