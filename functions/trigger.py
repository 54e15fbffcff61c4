"""The trigger function (lands with a later issue; until then it answers 501)."""

from __future__ import annotations

import flask
import functions_framework

from functions._pending import pending_routes
from shared.http import serve

routes = pending_routes("The scheduler trigger")


@functions_framework.http
def trigger(request: flask.Request) -> flask.Response:
    """The scheduler trigger."""
    return serve(request, routes, "trigger")
