"""The admin function: platform bootstrap and tenant lifecycle, behind X-Admin-Key."""

from __future__ import annotations

import flask
import functions_framework
from pydantic import BaseModel, ConfigDict

from shared.bootstrap import bootstrap_central
from shared.errors import unprocessable
from shared.http import ApiRequest, Reply, Routes, require_admin, serve
from shared.schemas import SchemaError

routes = Routes()


class BootstrapRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = False


@routes.route("/bootstrap", methods=["POST"])
def bootstrap(request: ApiRequest) -> Reply:
    """Creates the central dataset and missing tables; an empty body means a real run."""
    require_admin(request)
    options = (
        request.model(BootstrapRequest) if request.body_bytes().strip() else BootstrapRequest()
    )
    try:
        catalog = request.deps.catalog
    except SchemaError as exc:
        raise unprocessable("invalid_schema", str(exc)) from None
    report = bootstrap_central(request.deps.warehouse, catalog, dry_run=options.dry_run)
    created = report.created and not report.dry_run
    return Reply(report.as_dict(), status=201 if created else 200)


@functions_framework.http
def admin(request: flask.Request) -> flask.Response:
    """Admin API: bootstrap, tenant status and lifecycle."""
    return serve(request, routes, "admin")
