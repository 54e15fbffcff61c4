"""The onboard function (lands with a later issue; until then it answers 501)."""

from __future__ import annotations

import flask
import functions_framework

from functions._pending import pending_routes
from shared.http import serve

routes = pending_routes("Onboarding")


@functions_framework.http
def onboard(request: flask.Request) -> flask.Response:
    """Onboarding."""
    return serve(request, routes, "onboard")
