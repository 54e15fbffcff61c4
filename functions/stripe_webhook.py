"""The Stripe webhook function: verified, deduplicated billing events applied to tenants."""

from __future__ import annotations

import flask
import functions_framework

from shared.http import ApiRequest, Reply, Routes, serve
from shared.tenancy import stripe_events

routes = Routes()


@routes.route(
    "/",
    methods=["POST"],
    auth="stripe",
    errors=(409, 413, 422),
    summary="A Stripe event (signed)",
)
def receive(request: ApiRequest) -> Reply:
    # The signature covers the exact raw bytes: verify before parsing anything.
    event = stripe_events.verify(
        request.body_bytes(), request.header("Stripe-Signature"), request.deps
    )
    status, body = stripe_events.handle(request.deps, event)
    return Reply({"event_id": event["id"], **body}, status=status)


@functions_framework.http
def stripe_webhook(request: flask.Request) -> flask.Response:
    """Stripe events: checkout, subscription and invoice lifecycle."""
    return serve(request, routes, "stripe_webhook")
