"""The trigger function: one scheduler tick (Cloud Scheduler via OIDC, or an operator)."""

from __future__ import annotations

import flask
import functions_framework

from shared.http import ApiRequest, Reply, Routes, serve
from shared.scheduling.auth import require_scheduler
from shared.scheduling.trigger import tick

routes = Routes()


@routes.route("/", methods=["POST"], auth="scheduler", summary="One scheduler tick")
def run_tick(request: ApiRequest) -> Reply:
    require_scheduler(request)
    return Reply(tick(request.deps).as_dict())


@functions_framework.http
def trigger(request: flask.Request) -> flask.Response:
    """Admits and enqueues due pipeline runs; reaps runs that stopped heartbeating."""
    return serve(request, routes, "trigger")
