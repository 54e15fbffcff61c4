"""The pipelines function: a tenant's pipeline configs and runs (X-API-Key)."""

from __future__ import annotations

import flask
import functions_framework

from shared.http import ApiRequest, Reply, Routes, parse_model, require_tenant, serve
from shared.scheduling import configs, history, manual
from shared.tenancy.roles import Role

routes = Routes()


@routes.route(
    "/configs",
    methods=["POST"],
    role=Role.EDITOR,
    auth="tenant",
    body=configs.PipelineConfigRequest,
    status=(201, 200),
    errors=(409,),
    idempotency_key=True,
)
def create_config(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    body = request.model(configs.PipelineConfigRequest)
    key = request.idempotency_key()
    config, created = configs.create_config(request.deps, tenant_id, body, key)
    return Reply(config, status=201 if created else 200)


@routes.route("/configs", methods=["GET"], role=Role.VIEWER, auth="tenant")
def list_configs(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply({"configs": configs.list_configs(request.deps, tenant_id)})


@routes.route("/configs/<config_id>", methods=["GET"], role=Role.VIEWER, auth="tenant")
def get_config(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply(configs.get_config(request.deps, tenant_id, request.args["config_id"]))


@routes.route(
    "/configs/<config_id>",
    methods=["PUT"],
    role=Role.EDITOR,
    auth="tenant",
    body=configs.PipelineConfigRequest,
    errors=(409,),
)
def replace_config(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    body = request.model(configs.PipelineConfigRequest)
    changes = body.model_dump()
    return Reply(configs.update_config(request.deps, tenant_id, request.args["config_id"], changes))


@routes.route(
    "/configs/<config_id>",
    methods=["PATCH"],
    role=Role.EDITOR,
    auth="tenant",
    body=configs.PipelineConfigPatch,
    errors=(409,),
)
def patch_config(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    body = request.model(configs.PipelineConfigPatch)
    changes = body.model_dump(exclude_unset=True)
    return Reply(configs.update_config(request.deps, tenant_id, request.args["config_id"], changes))


@routes.route(
    "/configs/<config_id>", methods=["DELETE"], role=Role.EDITOR, auth="tenant", errors=(409,)
)
def delete_config(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply(configs.delete_config(request.deps, tenant_id, request.args["config_id"]))


@routes.route(
    "/runs",
    methods=["POST"],
    role=Role.EDITOR,
    auth="tenant",
    body=manual.StartRunRequest,
    status=(202, 200),
    errors=(404, 409, 429),
    idempotency_key=True,
)
def start_run(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    body = request.model(manual.StartRunRequest)
    key = request.idempotency_key()
    started, created = manual.start(request.deps, tenant_id, body, key)
    return Reply(started, status=202 if created else 200)


@routes.route(
    "/runs",
    methods=["GET"],
    role=Role.VIEWER,
    auth="tenant",
    query=history.RunFilters,
    errors=(400,),
)
def list_runs(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    filters = parse_model(history.RunFilters, request.raw.args.to_dict())
    return Reply(history.list_runs(request.deps, tenant_id, filters))


@routes.route("/runs/<run_id>", methods=["GET"], role=Role.VIEWER, auth="tenant")
def get_run(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply(history.get_run(request.deps, tenant_id, request.args["run_id"]))


@routes.route(
    "/runs/<run_id>/cancel",
    methods=["POST"],
    role=Role.EDITOR,
    auth="tenant",
    status=(202,),
    errors=(409,),
)
def cancel_run(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply(manual.cancel(request.deps, tenant_id, request.args["run_id"]), status=202)


@routes.route(
    "/runs/<run_id>/retry",
    methods=["POST"],
    role=Role.EDITOR,
    auth="tenant",
    status=(202, 200),
    errors=(409, 429),
)
def retry_run(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    retried, created = manual.retry(request.deps, tenant_id, request.args["run_id"])
    return Reply(retried, status=202 if created else 200)


@functions_framework.http
def pipelines(request: flask.Request) -> flask.Response:
    """Pipeline configs (schedules) and runs (manual, backfill, retry, cancel, history)."""
    return serve(request, routes, "pipelines")
