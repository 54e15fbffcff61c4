"""The stripe_webhook function (lands with a later issue; until then it answers 501)."""

from __future__ import annotations

import flask
import functions_framework

from functions._pending import pending_routes
from shared.http import serve

routes = pending_routes("The Stripe webhook")


@functions_framework.http
def stripe_webhook(request: flask.Request) -> flask.Response:
    """The Stripe webhook."""
    return serve(request, routes, "stripe_webhook")
