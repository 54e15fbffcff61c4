"""The notifications function: a tenant's webhooks (secret shown once) and its recent messages."""

from __future__ import annotations

import flask
import functions_framework

from shared.http import ApiRequest, Reply, Routes, require_tenant, serve
from shared.notify import outbox, webhooks
from shared.platform.errors import unprocessable
from shared.tenancy.roles import Role

routes = Routes()
MAX_MESSAGES = 200


@routes.route(
    "/webhooks",
    methods=["POST"],
    role=Role.EDITOR,
    auth="tenant",
    body=webhooks.RegisterWebhookRequest,
    status=(201, 200),
    errors=(409,),
    idempotency_key=True,
    summary="Register a webhook; its signing secret is shown once",
)
def register_webhook(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    body = request.model(webhooks.RegisterWebhookRequest)
    hook, created = webhooks.register(request.deps, tenant_id, body, request.idempotency_key())
    return Reply(hook, status=201 if created else 200)


@routes.route("/webhooks", methods=["GET"], role=Role.VIEWER, auth="tenant", summary="Webhooks")
def list_webhooks(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply({"webhooks": webhooks.list_webhooks(request.deps, tenant_id)})


@routes.route(
    "/webhooks/<webhook_id>",
    methods=["DELETE"],
    role=Role.EDITOR,
    auth="tenant",
    summary="Delete a webhook",
)
def delete_webhook(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply(webhooks.delete_webhook(request.deps, tenant_id, request.args["webhook_id"]))


@routes.route(
    "/messages",
    methods=["GET"],
    role=Role.VIEWER,
    auth="tenant",
    summary="Recent alert messages and their delivery state",
)
def list_messages(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    raw = request.raw.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_MESSAGES:
        raise unprocessable(
            "validation_failed", f"limit: an integer from 1 to {MAX_MESSAGES}", field="limit"
        )
    return Reply({"messages": outbox.list_messages(request.deps.warehouse, tenant_id, int(raw))})


@functions_framework.http
def notifications(request: flask.Request) -> flask.Response:
    """Webhook registration (https, SSRF-checked, signed) and the tenant's alert messages."""
    return serve(request, routes, "notifications")
