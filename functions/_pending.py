"""Routes of functions not built yet: an honest 501, never a fake success."""

from __future__ import annotations

from shared.http import ApiRequest, Reply, Routes
from shared.platform.errors import ApiError


def pending_routes(capability: str) -> Routes:
    routes = Routes()

    def not_implemented(request: ApiRequest) -> Reply:
        raise ApiError(501, "not_implemented", f"{capability} is not available yet")

    for rule in ("/", "/<path:rest>"):
        routes.route(rule, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])(not_implemented)
    return routes
