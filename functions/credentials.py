"""The credentials function (lands with a later issue; until then it answers 501)."""

from __future__ import annotations

import flask
import functions_framework

from functions._pending import pending_routes
from shared.http import serve

routes = pending_routes("The credentials vault")


@functions_framework.http
def credentials(request: flask.Request) -> flask.Response:
    """The credentials vault."""
    return serve(request, routes, "credentials")
