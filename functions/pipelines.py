"""The pipelines function (lands with a later issue; until then it answers 501)."""

from __future__ import annotations

import flask
import functions_framework

from functions._pending import pending_routes
from shared.http import serve

routes = pending_routes("Pipeline configuration")


@functions_framework.http
def pipelines(request: flask.Request) -> flask.Response:
    """Pipeline configuration."""
    return serve(request, routes, "pipelines")
