"""The quota function (lands with a later issue; until then it answers 501)."""

from __future__ import annotations

import flask
import functions_framework

from functions._pending import pending_routes
from shared.http import serve

routes = pending_routes("The quota check")


@functions_framework.http
def quota(request: flask.Request) -> flask.Response:
    """The quota check."""
    return serve(request, routes, "quota")
