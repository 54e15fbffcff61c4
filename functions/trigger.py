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


@routes.route(
    "/notifications", methods=["POST"], auth="scheduler", summary="One outbox sender pass"
)
def send_notifications(request: ApiRequest) -> Reply:
    """One bounded outbox sender pass (shared.notify.sender), on the same schedule as ticks."""
    require_scheduler(request)
    from shared.notify.quota_alerts import record_quota_alerts
    from shared.notify.sender import send_due

    # Quota alerts are decided here, set-based for every tenant whose usage
    # changed, so admission (ticks, manual runs) keeps its statement count.
    record_quota_alerts(request.deps.warehouse, request.deps.clock())
    return Reply(send_due(request.deps).as_dict())


@functions_framework.http
def trigger(request: flask.Request) -> flask.Response:
    """Admits and enqueues due pipeline runs; reaps runs that stopped heartbeating."""
    return serve(request, routes, "trigger")
